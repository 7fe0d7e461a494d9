"""The audit entries the services write, one named builder per kind (R8, §9.7).

Each builder fixes the entry's action, resource and metadata keys, so two places that record
the same event write the same entry.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from magiclink.domain._enums import AuditAction, InvalidationReason, IssuePath, RefusalReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._records import AuditEntry, MagicLinkToken, NewAuditEntry

ENDPOINT: Final = "magiclink"


class _OperationIds:
    """Fresh keys for service calls: 32 hex digits, a random 64-bit prefix of this process
    and a 64-bit counter. Unique within the process by the counter (`next` on
    `itertools.count` is atomic), across processes by the prefix, which a forked child
    draws anew; a fifth of the cost of 128 fresh random bits per call."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_operation_id: Final = _OperationIds()
"""A fresh key for one service call's audit entries (32 hex digits): after an ambiguous
commit, `AuditLog.by_operation` finds exactly that call's entries."""
os.register_at_fork(after_in_child=new_operation_id.reseed)


def resource(booking_id: int | None) -> str | None:
    """The `resource_id` of an entry about a booking: its id as text (None for none)."""
    return None if booking_id is None else str(booking_id)


def new_entry(
    action: str,
    guest_id: int | None,
    resource_id: str | None,
    metadata: Mapping[str, Any],
    now: datetime,
    *,
    success: bool = True,
    operation_id: str | None = None,
    endpoint: str = ENDPOINT,
) -> NewAuditEntry:
    """The one place an entry is put together (the services' own are of `ENDPOINT`)."""
    return NewAuditEntry(
        guest_id=guest_id,
        endpoint=endpoint,
        action=action,
        resource_id=resource_id,
        success=success,
        metadata=metadata,
        created_at=now,
        operation_id=operation_id,
    )


def creation(path: IssuePath, now: datetime) -> NewAuditEntry:
    """`CREATE_TOKEN` before its token is stored: a link was issued on `path` (what the hourly
    cap counts, §9.4). `NewAuditEntry.of_token` completes it with the token (its guest, its
    id, its booking as the resource)."""
    return new_entry(AuditAction.CREATE_TOKEN, None, None, {"path": str(path)}, now)


def consumption(
    booking_id: int | None,
    now: datetime,
    action: str | None = None,
    *,
    operation_id: str | None = None,
) -> NewAuditEntry:
    """`CONSUME_TOKEN` before its token is known: a successful consumption (§9.7), by
    `consume_token` or by a link action (§8.1, which names its `action`), of the booking acted
    on (None: the token's own). `NewAuditEntry.of_token` completes it with the token."""
    metadata: dict[str, Any] = {} if action is None else {"action": action}
    return new_entry(
        AuditAction.CONSUME_TOKEN,
        None,
        resource(booking_id),
        metadata,
        now,
        operation_id=operation_id,
    )


def token_consumed(
    token: MagicLinkToken,
    booking_id: int | None,
    now: datetime,
    action: str | None = None,
    *,
    operation_id: str | None = None,
) -> NewAuditEntry:
    """`consumption` of `token`: its entry once the token is known."""
    return consumption(booking_id, now, action, operation_id=operation_id).of_token(token)


def verify_refused(
    token: MagicLinkToken,
    reason: RefusalReason,
    operation: str,
    now: datetime,
    *,
    within_grace: bool = False,
) -> NewAuditEntry:
    """`VERIFY_TOKEN`, unsuccessful: a known link was refused, and why (R8)."""
    metadata: dict[str, Any] = {
        "reason": str(reason),
        "token_id": token.id,
        "operation": operation,
    }
    if within_grace:
        metadata["within_grace"] = True
    return new_entry(
        AuditAction.VERIFY_TOKEN,
        token.guest_id,
        resource(token.booking_id),
        metadata,
        now,
        success=False,
    )


def tokens_invalidated(
    guest_id: int,
    booking_id: int | None,
    reason: InvalidationReason,
    count: int,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    *,
    operation_id: str | None = None,
) -> NewAuditEntry:
    """`INVALIDATE_TOKEN`: `count` links of one guest died for `reason` (one per guest, R8)."""
    batch = tokens_invalidated_per_guest(booking_id, reason, now, extra, operation_id=operation_id)
    return batch.counted(guest_id, count)


def tokens_invalidated_per_guest(
    booking_id: int | None,
    reason: InvalidationReason,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
    *,
    operation_id: str | None = None,
) -> NewAuditEntry:
    """`tokens_invalidated` before the guest and the count are known: the template a batch
    invalidation writes once per guest (`NewAuditEntry.counted`)."""
    metadata = {**(extra or {}), "reason": str(reason)}
    return new_entry(
        AuditAction.INVALIDATE_TOKEN,
        None,
        resource(booking_id),
        metadata,
        now,
        operation_id=operation_id,
    )


def guest_admin(
    action: AuditAction, guest_id: int, killed: int, now: datetime, *, operation_id: str
) -> NewAuditEntry:
    """`BLOCK_GUEST` / `UNBLOCK_GUEST`: an operator's decision, with the links it killed."""
    return new_entry(
        action, guest_id, None, {"invalidated": killed}, now, operation_id=operation_id
    )


def landed_count(entries: Sequence[AuditEntry]) -> int | None:
    """How many links the `INVALIDATE_TOKEN` entries of one operation killed; None when
    it wrote none (nothing landed, or there was nothing to kill: running again is safe)."""
    counts = [
        int(entry.metadata.get("count", 0))
        for entry in entries
        if entry.action == AuditAction.INVALIDATE_TOKEN
    ]
    return sum(counts) if counts else None


_PLAIN_SCALARS: Final = (bool, int, type(None))


def _plain_str(text: object) -> bool:
    """A string the full check below would pass, known without encoding it: printable
    (so no NUL and no lone surrogate) and free of backslashes (left to that check)."""
    return type(text) is str and text.isprintable() and "\\" not in text


def _plain_item(item: tuple[object, object]) -> bool:
    """A metadata item of a string key and a plain value (string, int, bool, None)."""
    key, value = item
    return _plain_str(key) and (type(value) in _PLAIN_SCALARS or _plain_str(value))


def json_object(value: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A copy of `value` if it is a JSON-serialisable mapping with string keys."""
    if value is None:
        return {}
    if type(value) is dict and all(map(_plain_item, value.items())):
        return dict(value)  # what json.dumps below would accept, without encoding it
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{name} must be a mapping with string keys")
    try:
        # ensure_ascii=False + encode: lone surrogates fail here rather than in a driver.
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidInput(f"{name} must be JSON-serialisable") from error
    if "\\u0000" in text:  # PostgreSQL's JSONB cannot store NUL characters
        raise InvalidInput(f"{name} must not contain NUL characters")
    return dict(value)


__all__ = [
    "ENDPOINT",
    "consumption",
    "creation",
    "guest_admin",
    "json_object",
    "landed_count",
    "new_entry",
    "new_operation_id",
    "resource",
    "token_consumed",
    "tokens_invalidated",
    "verify_refused",
]
