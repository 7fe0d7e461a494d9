"""Whole-suite guard: no raw token ever reaches a log record (issue 6, SPEC §7).

`conftest.py` wraps `secrets.token_hex`, where the library draws every raw token (SPEC §2:
32 random bytes from `secrets`), so every raw token issued during the run is remembered, and attaches a `LeakScanner` handler to logger `magiclink` for
the whole session. Each record is rendered (message and every attribute) and searched for
64-hex-character strings; any that is a remembered raw token is a leak. Tokens are recorded
at generation, before any record that could carry them is emitted, so checking each record
as it arrives is complete.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import ParamSpec

_HEX64 = re.compile(r"[0-9a-f]{64}")

P = ParamSpec("P")


class LeakScanner(logging.Handler):
    """Remembers issued raw tokens and reports records that contain one."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.issued: set[str] = set()
        self.leaks: list[str] = []
        self.records_seen = 0

    def remember(self, generate: Callable[P, str]) -> Callable[P, str]:
        """Wrap a raw-token generator so that what it returns is remembered."""

        def generate_and_remember(*args: P.args, **kwargs: P.kwargs) -> str:
            raw = generate(*args, **kwargs)
            self.issued.add(raw)
            return raw

        return generate_and_remember

    def found_in(self, record: logging.LogRecord) -> list[str]:
        """The remembered raw tokens that appear anywhere in `record`."""
        text = f"{record.getMessage()} {record.__dict__!r}"
        return list(dict.fromkeys(m for m in _HEX64.findall(text) if m in self.issued))

    def emit(self, record: logging.LogRecord) -> None:
        self.records_seen += 1
        for raw in self.found_in(record):
            self.leaks.append(f"{record.name}:{record.levelname}: {record.msg!r} leaks {raw[:8]}…")
