"""Guests and the operator's views: blocking (§9.3), the access log, stats and the purge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

from magiclink.domain import _audit
from magiclink.domain._context import GuestContext
from magiclink.domain._enums import AuditAction, InvalidationReason
from magiclink.domain._errors import InvalidInput, StorageError
from magiclink.domain._policy import (
    normalize_email,
    require_duration,
    require_id,
    require_optional_id,
    require_text,
)
from magiclink.domain._records import AuditEntry, Guest, MagicLinkToken
from magiclink.domain._transactions import Operation, read, rerun, run
from magiclink.ports._repositories import TokenStats
from magiclink.ports._unit_of_work import Transaction

T = TypeVar("T")

MAX_AUDIT_TEXT: Final = 255
MAX_AUDIT_LIMIT: Final = 10_000
MAX_PURGE_BATCH: Final = 100_000


class GuestAdmin:
    """The operator's side of guests and links."""

    def __init__(self, context: GuestContext) -> None:
        self._context = context

    def block(self, email: str) -> Guest:
        """See `GuestService.block_guest`."""
        normalized = normalize_email(email)
        now = self._context.clock.now()
        reason = InvalidationReason.GUEST_BLOCKED
        operation_id = _audit.new_operation_id()

        def work(tx: Transaction) -> tuple[Guest, int]:
            guest, _ = tx.guests.get_or_create(normalized, now=now, last_request_at=None)
            blocked = tx.guests.set_blocked(guest.id, True)
            if blocked is None:  # pragma: no cover - the row was just read in this transaction
                raise StorageError("Guest vanished while being blocked")
            killed = tx.tokens.invalidate_all_live(guest_id=guest.id, reason=reason, now=now)
            entries = [
                _audit.guest_admin(
                    AuditAction.BLOCK_GUEST, guest.id, killed, now, operation_id=operation_id
                )
            ]
            if killed:
                entries.append(
                    _audit.tokens_invalidated(
                        guest.id, None, reason, killed, now, operation_id=operation_id
                    )
                )
            tx.audit.add_many(entries)
            return blocked, killed

        landed = _guest_decided(normalized, operation_id)
        guest, killed = run(self._context.uow, Operation(work, landed=landed))
        self._context.instruments.guest_blocked(guest, killed)
        return guest

    def unblock(self, email: str) -> Guest | None:
        """See `GuestService.unblock_guest`."""
        normalized = normalize_email(email)
        now = self._context.clock.now()
        operation_id = _audit.new_operation_id()

        def work(tx: Transaction) -> tuple[Guest | None, int]:
            guest = tx.guests.get_by_email(normalized)
            if guest is None:
                return None, 0
            entry = _audit.guest_admin(
                AuditAction.UNBLOCK_GUEST, guest.id, 0, now, operation_id=operation_id
            )
            tx.audit.add_many([entry])
            return tx.guests.set_blocked(guest.id, False), 0

        landed = _guest_decided(normalized, operation_id)
        guest, _ = run(self._context.uow, Operation(work, landed=landed))
        if guest is not None:
            self._context.instruments.guest_unblocked(guest)
        return guest

    def get_guest(self, email: str) -> Guest | None:
        """The guest with this e-mail (normalized), or None."""
        normalized = normalize_email(email)
        return self._read(lambda tx: tx.guests.get_by_email(normalized))

    def log_access(
        self,
        guest_id: int | None,
        endpoint: str,
        action: str,
        resource_id: str | None,
        success: bool,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        """See `GuestService.log_access`."""
        guest_id = require_optional_id(guest_id, "guest_id")
        endpoint = require_text(endpoint, "endpoint", max_length=MAX_AUDIT_TEXT)
        action = require_text(action, "action", max_length=MAX_AUDIT_TEXT)
        if resource_id is not None:
            resource_id = require_text(resource_id, "resource_id", max_length=MAX_AUDIT_TEXT)
        if not isinstance(success, bool):
            raise InvalidInput("success must be a bool")
        entry = _audit.new_entry(
            action,
            guest_id,
            resource_id,
            _audit.json_object(metadata, "metadata"),
            self._context.clock.now(),
            success=success,
            endpoint=endpoint,
        )
        run(self._context.uow, Operation(lambda tx: tx.audit.add_many([entry])))

    def token_stats(self) -> TokenStats:
        """Live, expired, used and invalidated token counts, and invalidations by reason."""
        now = self._context.clock.now()
        return self._read(lambda tx: tx.tokens.stats(now=now))

    def count_expired(self, expired_for: timedelta) -> int:
        """How many tokens expired more than `expired_for` ago (what a purge would delete)."""
        before = _before(self._context.clock.now(), expired_for)
        return self._read(lambda tx: tx.tokens.count_expired(expired_before=before))

    def purge_expired(
        self, expired_for: timedelta, batch_size: int, on_batch: Callable[[int], None] | None
    ) -> int:
        """See `GuestService.purge_expired_tokens`."""
        before = _before(self._context.clock.now(), expired_for)
        _require_count(batch_size, "batch_size", MAX_PURGE_BATCH)
        total = self._read(lambda tx: tx.tokens.count_expired(expired_before=before))
        batch = Operation(
            lambda tx: tx.tokens.purge_expired(expired_before=before, limit=batch_size),
            landed=rerun,
        )
        deleted = 0
        for _ in range(-(-total // batch_size)):
            count = run(self._context.uow, batch)
            deleted += count
            if on_batch is not None:
                on_batch(count)
            if count == 0:
                break
        return deleted

    def tokens_for_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first (hashes only, never raw tokens)."""
        booking_id = require_id(booking_id, "booking_id")
        return self._read(lambda tx: tx.tokens.list_by_booking(booking_id))

    def audit_trail(
        self, booking_id: int | None, guest_id: int | None, limit: int
    ) -> list[AuditEntry]:
        """See `GuestService.audit_trail`."""
        booking_id = require_optional_id(booking_id, "booking_id")
        guest_id = require_optional_id(guest_id, "guest_id")
        _require_count(limit, "limit", MAX_AUDIT_LIMIT)
        return self._read(
            lambda tx: tx.audit.list(booking_id=booking_id, guest_id=guest_id, limit=limit)
        )

    def _read(self, work: Callable[[Transaction], T]) -> T:
        return run(self._context.uow, read(work))


def _guest_decided(
    normalized_email: str, operation_id: str
) -> Callable[[Transaction], tuple[Guest, int] | None]:
    """`landed` of block/unblock, exact: this call's `BLOCK_GUEST` / `UNBLOCK_GUEST` entry is
    stored (by its operation id); it also says how many links the block killed. None
    means it did not land (or, for an unknown address, that there was nothing to do)."""

    def landed(tx: Transaction) -> tuple[Guest, int] | None:
        decided = [
            entry
            for entry in tx.audit.by_operation(operation_id)
            if entry.action in (AuditAction.BLOCK_GUEST, AuditAction.UNBLOCK_GUEST)
        ]
        guest = tx.guests.get_by_email(normalized_email)
        if not decided or guest is None:
            return None
        return guest, int(decided[0].metadata.get("invalidated", 0))

    return landed


def _require_count(value: object, name: str, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise InvalidInput(f"{name} must be an integer between 1 and {maximum}")


def _before(now: datetime, expired_for: object) -> datetime:
    """`now - expired_for`, refusing a duration that is not one or reaches before year 1."""
    try:
        return now - require_duration(expired_for, "expired_for")
    except OverflowError as error:
        raise InvalidInput("expired_for is out of range") from error


__all__ = ["MAX_AUDIT_LIMIT", "MAX_AUDIT_TEXT", "MAX_PURGE_BATCH", "GuestAdmin"]
