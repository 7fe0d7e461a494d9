"""Structured log events on logger `magiclink`, with the same fields everywhere.

Every event is one record whose message starts with the event name and whose fields are
passed as `extra` (so a JSON formatter renders them as fields): `event`, and where they apply
`booking_id`, `reason`, `count`, `duration_ms`, `error_type`, `error`, `token_id`, `guest_id`,
`path`, `operation`, `step`, `incident_id`. The library configures no handler.

Raw tokens are never passed here; and because a field such as `error` may carry text from a
host's own code (a notifier exception quoting the link URL), every 64-hex-character run in a
string field is redacted before the record is built.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

logger: Final = logging.getLogger("magiclink")
# The library adds no handler of its own beyond this one, as the logging HOWTO advises:
# records go wherever the host's configuration sends them, and nowhere when it has none.
logger.addHandler(logging.NullHandler())


class Events:
    """Stable event names."""

    INVALIDATION_SUCCEEDED: Final = "token_invalidation.succeeded"
    INVALIDATION_FAILED: Final = "token_invalidation.failed"
    INVALIDATION_RETRIED: Final = "token_invalidation.retried"
    STORAGE_RETRIED: Final = "storage.retried"
    TOKEN_ISSUED: Final = "token.issued"
    TOKEN_CONSUMED: Final = "token.consumed"
    TOKEN_VERIFIED: Final = "token.verified"
    TOKEN_UNKNOWN: Final = "token.unknown"
    VERIFY_REFUSED: Final = "token.verify_refused"
    REUSE_DETECTED: Final = "token.reuse_detected"
    AUDIT_WRITE_FAILED: Final = "audit.write_failed"
    LIFECYCLE_STEP_FAILED: Final = "lifecycle.step_failed"
    INCIDENT_BOOKING_UNKNOWN: Final = "incident.booking_unknown"
    GUEST_BLOCKED: Final = "guest.blocked"
    GUEST_UNBLOCKED: Final = "guest.unblocked"


_SECRET_LIKE: Final = re.compile(r"[0-9a-fA-F]{64}")
REDACTED: Final = "[redacted]"


def redact(text: str) -> str:
    """`text` with every run of 64 hex characters (a raw token or its hash) redacted."""
    return _SECRET_LIKE.sub(REDACTED, text)


def log_event(level: int, event: str, **fields: object) -> None:
    """Emit `event` at `level` with `fields` as record attributes and in the message."""
    if not logger.isEnabledFor(level):
        return
    for key, value in fields.items():
        if isinstance(value, str) and len(value) >= 64:
            fields[key] = redact(value)
    rendered = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
    logger.log(level, f"{event} {rendered}".rstrip(), extra={"event": event, **fields})


def elapsed_ms(started: float) -> float:
    """Milliseconds since `started` (a `time.perf_counter()` reading), rounded to 0.001."""
    return round((time.perf_counter() - started) * 1000, 3)


__all__ = ["REDACTED", "Events", "elapsed_ms", "log_event", "redact"]
