"""The outbox port (§11.2): mail intents stored with the booking event, delivered later.

An intent says *who* gets a link for *which* booking revision and *why* (`kind`: "booking",
"reschedule"); it never holds a raw token — the worker mints the link at delivery time.

Life of a message: `pending` → (claimed) `sending` → `delivered`; a failed attempt goes back
to `pending` with a later `next_attempt_at`, the last one to `dead`; an intent that became
pointless before delivery (booking closed, moved again, guest blocked) ends `skipped`. While
`sending`, `next_attempt_at` is the claim's lease: a worker that died mid-delivery leaves a
message that is claimable again once the lease has passed.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

import attrs

from magiclink.domain._records import UNSAVED_ID, Booking
from magiclink.ports._unit_of_work import Transaction


class OutboxState(enum.StrEnum):
    """Where an outbox message stands."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    SKIPPED = "skipped"


class OutboxMetricNames:
    """Stable metric names of the outbox worker."""

    DELIVERIES: Final = "magiclink_outbox_deliveries_total"  # labels: outcome, kind
    DEAD_LETTERS: Final = "magiclink_outbox_dead_letters_total"  # labels: kind


@attrs.frozen
class OutboxMessage:
    """One stored mail intent. `token_id` is the link minted by the latest attempt, if any."""

    id: int
    booking_id: int
    booking_revision: int
    guest_email: str
    kind: str
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    token_id: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None

    @classmethod
    def pending(cls, booking: Booking, kind: str, now: datetime) -> OutboxMessage:
        """A new intent for `Outbox.enqueue`: a `kind` mail about `booking` as it stands
        (its revision, its guest's address), pending, never attempted, due at `now`."""
        return cls(
            id=UNSAVED_ID,
            booking_id=booking.id,
            booking_revision=booking.revision,
            guest_email=booking.guest_email,
            kind=kind,
            state=OutboxState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )


@attrs.frozen
class OutboxStatus:
    """Counts of messages by state, and when the oldest undelivered one was stored."""

    counts: Mapping[str, int]
    oldest_pending_at: datetime | None


class Outbox(abc.ABC):
    """Stores mail intents and hands them to delivery workers, at most one worker at a time.

    `enqueue` and `record_link` join the caller's transaction (of the same unit of work as
    the outbox); every other method runs its own short transaction.
    """

    @abc.abstractmethod
    def enqueue(self, tx: Transaction, message: OutboxMessage) -> int:
        """Store `message`, a new intent (`OutboxMessage.pending`, its id `UNSAVED_ID`,
        ignored), in `tx`; return the id storage assigned."""

    @abc.abstractmethod
    def claim_due(self, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        """Claim up to `limit` messages due at `now` (pending, or sending with a lapsed lease):
        each becomes `sending`, `attempts + 1`, leased until `now + lease`. Racing callers
        never claim the same message (FOR UPDATE SKIP LOCKED, or the database's write lock)."""

    @abc.abstractmethod
    def record_link(self, tx: Transaction, message_id: int, token_id: int) -> None:
        """Remember, in `tx` (the minting transaction), the link this attempt minted."""

    @abc.abstractmethod
    def finish(
        self,
        message_id: int,
        *,
        attempt: int,
        state: OutboxState,
        now: datetime,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> bool:
        """End attempt `attempt` of a `sending` message: `delivered`, `pending` again (due at
        `next_attempt_at`), `dead` or `skipped`. False when that claim is no longer held
        (its lease lapsed and another worker claimed the message)."""

    @abc.abstractmethod
    def retry(self, message_id: int, *, now: datetime) -> bool:
        """Make a `dead` or `skipped` message pending again, due now, attempts reset."""

    @abc.abstractmethod
    def get(self, message_id: int) -> OutboxMessage | None:
        """The message, or None."""

    @abc.abstractmethod
    def list(self, *, state: OutboxState | None = None, limit: int = 1000) -> list[OutboxMessage]:
        """Messages (of one state), oldest first."""

    @abc.abstractmethod
    def status(self) -> OutboxStatus:
        """Counts by state and the oldest pending or sending message's creation time."""


__all__ = ["Outbox", "OutboxMessage", "OutboxMetricNames", "OutboxState", "OutboxStatus"]
