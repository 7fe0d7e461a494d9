"""Abstract repositories. Each method is a constant number of statements in SQL — one for
nearly all, batch work included — so that no service ever loops over tokens or guests and
no operation's statement count grows with them (R10.5).

Every method runs inside the transaction that owns the repository. Adapters raise only
`magiclink` errors: `StorageError` (with `transient`) or the domain conflict a failure means.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    Incident,
    InvalidationResult,
    MagicLinkToken,
    NewAuditEntry,
    Rating,
    TokenLookup,
)


@attrs.frozen
class TokenStats:
    """Counts over the token table at one instant (for operators)."""

    live: int
    expired: int
    used: int
    invalidated: int
    invalidated_by_reason: Mapping[str, int]


class GuestRepository(abc.ABC):
    """Guests, keyed by id and by normalized e-mail."""

    @abc.abstractmethod
    def get(self, guest_id: int) -> Guest | None:
        """The guest with this id, or None."""

    @abc.abstractmethod
    def get_by_email(self, normalized_email: str) -> Guest | None:
        """The guest with this normalized e-mail, or None."""

    @abc.abstractmethod
    def get_or_create(
        self, normalized_email: str, *, now: datetime, last_request_at: datetime | None
    ) -> tuple[Guest, bool]:
        """The guest with this e-mail and whether this call created it.

        A new guest is stored unblocked with `last_request_at`. A concurrent creation of the
        same e-mail is not an error: the loser reads and returns the winner (created False).
        """

    @abc.abstractmethod
    def claim_request_slot(self, guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        """Set `last_request_at = now` only if it is NULL or `<= not_after`; True if it did.

        One conditional write, so of racing requests exactly one claims the slot.
        """

    @abc.abstractmethod
    def set_blocked(self, guest_id: int, blocked: bool) -> Guest | None:
        """Set the guest's `blocked` flag; the updated guest, or None if unknown."""


class BookingRepository(abc.ABC):
    """Bookings. A host may implement this over its own booking table (docs/adapters.md)."""

    @abc.abstractmethod
    def add(self, booking: Booking) -> Booking:
        """Store `booking`, a new one (its id `UNSAVED_ID`, ignored); the stored booking, with
        the id storage assigned. A duplicate uid raises `InvalidInput`."""

    @abc.abstractmethod
    def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        """The booking with this id, or None; `for_update` locks it until the transaction ends."""

    @abc.abstractmethod
    def get_by_uid(self, uid: str) -> Booking | None:
        """The booking with this uid, or None."""

    @abc.abstractmethod
    def update(self, booking: Booking) -> None:
        """Write the status, times, revision and `operation_id` of an existing booking;
        an unknown id changes nothing.

        `operation_id` names the service call that wrote the row, which reads it back with
        `get` / `get_by_uid` after a commit whose outcome is unknown (its `landed` key, issue
        12.2). An adapter that does not store it stays correct but loses that answer: such a
        call is then run again as if it had not landed."""

    @abc.abstractmethod
    def revoke_links(self, booking_id: int) -> None:
        """Advance the booking's `link_generation` by one, atomically (§8.4): every link
        issued before is dead from this transaction's commit on. An unknown id changes
        nothing."""


class TokenRepository(abc.ABC):
    """Stored tokens (hashes only). A token is *live* when it is not invalidated, not used,
    not expired, and — when bound to a booking — that booking exists, is open (scheduled or
    completed), is still at the token's revision when the token has one, and is still at
    the token's link generation (§8.4)."""

    @abc.abstractmethod
    def add(self, token: MagicLinkToken) -> MagicLinkToken:
        """Store `token`, a new, live one (`MagicLinkToken.new`, its id `UNSAVED_ID`,
        ignored); the stored token, with the id storage assigned. Its `link_generation` is
        its booking's generation at issue (§8.4); a missing or older one leaves the link dead
        once its booking has had an event (fail-closed)."""

    @abc.abstractmethod
    def lookup(self, token_hash: str) -> TokenLookup | None:
        """The token with this hash, with its guest and its booking's status, revision and
        link generation.

        One indexed read; None when no token has this hash.
        """

    @abc.abstractmethod
    def get(self, token_id: int) -> MagicLinkToken | None:
        """The token with this id, or None."""

    @abc.abstractmethod
    def consume(self, token_id: int, *, now: datetime) -> bool:
        """Set `used_at = now` only if the token is live at `now`; True if this call did it.

        One conditional write: of racing consumers exactly one gets True.
        """

    @abc.abstractmethod
    def invalidate(
        self, token_id: int, *, reason: InvalidationReason, now: datetime
    ) -> MagicLinkToken | None:
        """Invalidate one token not yet invalidated (used_at kept if set, else `now`).

        The token as it was before the change, or None if it is unknown or already invalidated.
        """

    @abc.abstractmethod
    def invalidate_by_booking(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime
    ) -> InvalidationResult:
        """Invalidate every token of the booking not already invalidated, in one UPDATE.

        Expired and consumed tokens are included; `used_at` keeps an earlier value, else
        becomes `now`. Returns the number of newly invalidated tokens per guest id.
        """

    @abc.abstractmethod
    def invalidate_live(
        self, *, guest_id: int, booking_id: int | None, reason: InvalidationReason, now: datetime
    ) -> int:
        """Invalidate the guest's unused, unexpired, not invalidated tokens for this booking
        (`booking_id=None`: the guest's inbox links, those with no booking). One UPDATE;
        returns how many changed."""

    @abc.abstractmethod
    def invalidate_all_live(
        self, *, guest_id: int, reason: InvalidationReason, now: datetime
    ) -> int:
        """Invalidate every unused, unexpired, not invalidated token of the guest, of any
        booking or none (§9.3: blocking kills links). One UPDATE; returns how many changed."""

    @abc.abstractmethod
    def list_by_booking(self, booking_id: int) -> list[MagicLinkToken]:
        """Every token of the booking, oldest first."""

    @abc.abstractmethod
    def purge_expired(self, *, expired_before: datetime, limit: int) -> int:
        """Delete at most `limit` tokens whose `expires_at < expired_before`, in one statement;
        returns how many were deleted."""

    @abc.abstractmethod
    def count_expired(self, *, expired_before: datetime) -> int:
        """How many tokens have `expires_at < expired_before`."""

    @abc.abstractmethod
    def stats(self, *, now: datetime) -> TokenStats:
        """Live, expired, used and invalidated counts, and invalidations by reason.

        Here *live* ignores bookings: not invalidated, not used, `expires_at > now`.
        """


class RatingRepository(abc.ABC):
    """Ratings: at most one per booking."""

    @abc.abstractmethod
    def add(self, rating: Rating) -> Rating:
        """Store `rating`, a new one (its id `UNSAVED_ID`, ignored); the stored rating, with
        the id storage assigned. A second one for the same booking raises `DuplicateRating`.

        Its `operation_id` is stored with it and returned on reads (the call's `landed` key)."""

    @abc.abstractmethod
    def get_by_booking(self, booking_id: int) -> Rating | None:
        """The booking's rating, or None."""


class IncidentRepository(abc.ABC):
    """Incident reports."""

    @abc.abstractmethod
    def add(self, incident: Incident) -> Incident:
        """Store `incident`, a new one (its id `UNSAVED_ID`, ignored); the stored incident,
        with the id storage assigned. Its `operation_id` is stored with it and returned on
        reads (the call's `landed` key)."""

    @abc.abstractmethod
    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        """Incidents reported for this booking uid, oldest first."""


class AuditLog(abc.ABC):
    """The guest access log: append-only."""

    @abc.abstractmethod
    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        """Append the entries in one batched INSERT (nothing when empty)."""

    @abc.abstractmethod
    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries newest first, filtered by `resource_id == str(booking_id)` and/or guest."""

    @abc.abstractmethod
    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        """The entries written with this `operation_id`, in insertion order (one indexed
        SELECT; an empty list when there are none).

        How a service tells, after a commit whose outcome is unknown, whether its own write
        landed (issue 12.2): the id is unique to one call, so the lookup is exact.
        """

    @abc.abstractmethod
    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        """How many links of this guest were issued on `path` after `since` (one SELECT).

        Counts the guest's `CREATE_TOKEN` entries whose `metadata["path"]` is `path` and
        whose `created_at` is strictly after `since` (the hourly cap of §9.4). The token row
        does not say which path issued it; its `CREATE_TOKEN` entry, written in the issuing
        transaction, does.
        """


__all__ = [
    "AuditLog",
    "BookingRepository",
    "GuestRepository",
    "IncidentRepository",
    "RatingRepository",
    "TokenRepository",
    "TokenStats",
]
