"""The in-memory repositories of guests, bookings, ratings, incidents and the audit log.

Each reads `store` and writes through the `_UndoLog` of the transaction it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from magiclink.adapters.memory._store import _UndoLog
from magiclink.domain._errors import DuplicateRating, InvalidInput
from magiclink.domain._records import Booking, Guest, Incident, Rating
from magiclink.domain._replace import replacer
from magiclink.ports._repositories import (
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
)

K = TypeVar("K")
V = TypeVar("V")

_requested = replacer(Guest, "last_request_at")
_blocked = replacer(Guest, "blocked")
_moved = replacer(Booking, "status", "start_time", "end_time", "revision", "operation_id")
_revoked = replacer(Booking, "link_generation")
_numbered_booking = replacer(Booking, "id")
_numbered_rating = replacer(Rating, "id")
_numbered_incident = replacer(Incident, "id")


class _Repository:
    """Base of the in-memory repositories. Their methods implement the port methods of the
    same names and keep the contracts documented there (`magiclink.ports._repositories`)."""

    def __init__(self, tx: _UndoLog) -> None:
        self._tx = tx

    @staticmethod
    def _indexed(index: Mapping[K, int], table: Mapping[int, V], key: K) -> V | None:
        """The record a unique secondary index maps `key` to, or None."""
        record_id = index.get(key)
        return None if record_id is None else table[record_id]

    def _stored(
        self,
        table: dict[int, V],
        record: V,
        numbered: Callable[[V, int], V],
        *unique: tuple[dict[Any, int], object],
    ) -> V:
        """Store `record` under a new id (undoable), entered in each unique `(index, key)`;
        the stored record, `numbered(record, id)`. An `add`'s uniqueness checks come first."""
        new_id = self._tx.store.next_id()
        stored = numbered(record, new_id)
        self._tx.put(table, new_id, stored)
        for index, key in unique:
            self._tx.put(index, key, new_id)
        return stored

    def _change(self, table: dict[int, V], key: int, change: Callable[[V], V]) -> V | None:
        """Replace the stored record by `change(record)` (undoable); None if it is unknown."""
        current = table.get(key)
        if current is None:
            return None
        changed = change(current)
        self._tx.put(table, key, changed)
        return changed


class InMemoryGuestRepository(_Repository, GuestRepository):
    """Guests in memory."""

    def get(self, guest_id: int) -> Guest | None:
        return self._tx.store.guests.get(guest_id)

    def get_by_email(self, normalized_email: str) -> Guest | None:
        store = self._tx.store
        return self._indexed(store.guest_by_email, store.guests, normalized_email)

    def get_or_create(
        self, normalized_email: str, *, now: datetime, last_request_at: datetime | None
    ) -> tuple[Guest, bool]:
        existing = self.get_by_email(normalized_email)
        if existing is not None:
            return existing, False
        store = self._tx.store
        guest = Guest(
            id=store.next_id(),
            normalized_email=normalized_email,
            blocked=False,
            last_request_at=last_request_at,
            created_at=now,
        )
        self._tx.put(store.guests, guest.id, guest)
        self._tx.put(store.guest_by_email, normalized_email, guest.id)
        return guest, True

    def claim_request_slot(self, guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        store = self._tx.store
        guest = store.guests.get(guest_id)
        if guest is None:
            return False
        if guest.last_request_at is not None and guest.last_request_at > not_after:
            return False
        self._tx.put(store.guests, guest_id, _requested(guest, now))
        return True

    def set_blocked(self, guest_id: int, blocked: bool) -> Guest | None:
        return self._change(self._tx.store.guests, guest_id, lambda guest: _blocked(guest, blocked))


class InMemoryBookingRepository(_Repository, BookingRepository):
    """Bookings in memory."""

    def add(self, booking: Booking) -> Booking:
        store = self._tx.store
        if booking.uid in store.booking_by_uid:
            raise InvalidInput("Booking uid already exists")
        unique = (store.booking_by_uid, booking.uid)
        return self._stored(store.bookings, booking, _numbered_booking, unique)

    def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        return self._tx.store.bookings.get(booking_id)

    def get_by_uid(self, uid: str) -> Booking | None:
        store = self._tx.store
        return self._indexed(store.booking_by_uid, store.bookings, uid)

    def update(self, booking: Booking) -> None:
        # uid and parties are fixed at creation; status, times, revision and the writer move.
        store = self._tx.store
        current = store.bookings.get(booking.id)
        if current is not None:
            changed = _moved(
                current,
                booking.status,
                booking.start_time,
                booking.end_time,
                booking.revision,
                booking.operation_id,
            )
            self._tx.put(store.bookings, booking.id, changed)

    def revoke_links(self, booking_id: int) -> None:
        store = self._tx.store
        current = store.bookings.get(booking_id)
        if current is not None:
            self._tx.put(store.bookings, booking_id, _revoked(current, current.link_generation + 1))


class InMemoryRatingRepository(_Repository, RatingRepository):
    """Ratings in memory, one per booking."""

    def add(self, rating: Rating) -> Rating:
        store = self._tx.store
        if rating.booking_id in store.rating_by_booking:
            raise DuplicateRating()
        unique = (store.rating_by_booking, rating.booking_id)
        return self._stored(store.ratings, rating, _numbered_rating, unique)

    def get_by_booking(self, booking_id: int) -> Rating | None:
        store = self._tx.store
        return self._indexed(store.rating_by_booking, store.ratings, booking_id)


class InMemoryIncidentRepository(_Repository, IncidentRepository):
    """Incidents in memory."""

    def add(self, incident: Incident) -> Incident:
        return self._stored(self._tx.store.incidents, incident, _numbered_incident)

    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        return [i for i in self._tx.store.incidents.values() if i.booking_uid == booking_uid]


__all__ = [
    "InMemoryBookingRepository",
    "InMemoryGuestRepository",
    "InMemoryIncidentRepository",
    "InMemoryRatingRepository",
    "_Repository",
]
