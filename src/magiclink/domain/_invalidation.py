"""Invalidating links: one token, or every live link of a booking (R5, the lifecycle's)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from magiclink.domain import _audit
from magiclink.domain._context import GuestContext
from magiclink.domain._enums import InvalidationReason
from magiclink.domain._errors import InvalidInput, StorageError
from magiclink.domain._observability import Events, elapsed_ms
from magiclink.domain._policy import require_id
from magiclink.domain._records import MagicLinkToken
from magiclink.domain._transactions import Operation, run
from magiclink.ports._unit_of_work import Transaction


def parse_reason(reason: object) -> InvalidationReason:
    """The `InvalidationReason` named by `reason` (a member or its value), else `InvalidInput`."""
    if isinstance(reason, InvalidationReason):
        return reason
    if isinstance(reason, str):
        try:
            return InvalidationReason(reason)
        except ValueError:
            pass
    raise InvalidInput("Unknown invalidation reason")


class Invalidation:
    """Invalidates links with their `INVALIDATE_TOKEN` entries, in the same transaction."""

    def __init__(self, context: GuestContext) -> None:
        self._context = context

    def one(self, token_id: int, reason: InvalidationReason | str) -> bool:
        """See `GuestService.invalidate_token`."""
        token_id = require_id(token_id, "token_id")
        parsed = parse_reason(reason)
        now = self._context.clock.now()
        started = time.perf_counter()
        operation_id = _audit.new_operation_id()

        def work(tx: Transaction) -> MagicLinkToken | None:
            before = tx.tokens.invalidate(token_id, reason=parsed, now=now)
            if before is not None:
                entry = _audit.tokens_invalidated(
                    before.guest_id, before.booking_id, parsed, 1, now, operation_id=operation_id
                )
                tx.audit.add_many([entry])
            return before

        def landed(tx: Transaction) -> MagicLinkToken | None:
            """Exact: this call's `INVALIDATE_TOKEN` entry is stored (by its operation id);
            none means it did not land, or found nothing to invalidate."""
            if not tx.audit.by_operation(operation_id):
                return None
            return tx.tokens.get(token_id)

        changed = run(self._context.uow, Operation(work, landed=landed)) is not None
        if changed:
            self._context.instruments.invalidated(parsed, 1, elapsed_ms(started) / 1000)
        return changed

    def of_booking(
        self,
        booking_id: int,
        reason: InvalidationReason | str,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """See `GuestService.invalidate_tokens_by_booking_id`."""
        booking_id = require_id(booking_id, "booking_id")
        parsed = parse_reason(reason)
        extra = _audit.json_object(metadata, "metadata")
        operation = self._of_booking(booking_id, parsed, extra)
        instruments = self._context.instruments
        started = time.perf_counter()
        try:
            count = run(self._context.uow, operation)
        except Exception as error:
            instruments.batch_invalidation_failed(booking_id, parsed, elapsed_ms(started), error)
            raise
        instruments.batch_invalidated(booking_id, parsed, count, elapsed_ms(started))
        return count

    def _of_booking(
        self, booking_id: int, reason: InvalidationReason, extra: Mapping[str, Any]
    ) -> Operation[int]:
        """The transaction of a batch invalidation: one UPDATE and one batched INSERT (one
        statement where the adapter can)."""
        now = self._context.clock.now()
        operation_id = _audit.new_operation_id()

        entry = _audit.tokens_invalidated_per_guest(
            booking_id, reason, now, extra, operation_id=operation_id
        )

        def work(tx: Transaction) -> int:
            result = tx.invalidate_booking_with_audit(
                booking_id, reason=reason, now=now, entry=entry
            )
            return result.count

        def landed(tx: Transaction) -> int | None:
            """Exact: the sum of this call's `INVALIDATE_TOKEN` entries, by operation id."""
            return _audit.landed_count(tx.audit.by_operation(operation_id))

        def retried(_error: StorageError) -> None:
            self._context.instruments.batch_invalidation_retried(reason)

        return Operation(
            work,
            one_write=True,
            landed=landed,
            retried_event=Events.INVALIDATION_RETRIED,
            log_fields={"booking_id": booking_id, "reason": str(reason)},
            on_retry=retried,
        )


__all__ = ["Invalidation", "parse_reason"]
