"""The leak scan of tests/conftest.py works and is active (issue 6)."""

from __future__ import annotations

import logging

from magiclink import GuestService
from magiclink.adapters.memory import InMemoryUnitOfWork
from tests.conftest import LEAK_SCANNER
from tests.leakscan import LeakScanner


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("magiclink", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_scanner_finds_a_remembered_token_in_message_or_fields() -> None:
    scanner = LeakScanner()
    raw = scanner.remember(lambda: "ab" * 32)()
    assert scanner.found_in(_record(f"token.issued raw={raw}")) == [raw]
    assert scanner.found_in(_record("token.issued", token=raw)) == [raw]
    assert scanner.found_in(_record("token.issued", token_hash="cd" * 32)) == []


def test_suite_scanner_is_attached_and_remembers_issued_tokens() -> None:
    """The session scanner sees the services' records and the raw tokens they issue."""
    seen_before = LEAK_SCANNER.records_seen
    issued = GuestService(InMemoryUnitOfWork()).request_inbox_link("leak@example.com")
    assert issued.raw in LEAK_SCANNER.issued
    assert LEAK_SCANNER.records_seen > seen_before
    assert LEAK_SCANNER in logging.getLogger("magiclink").handlers
