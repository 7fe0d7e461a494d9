"""The in-memory repositories of guests, bookings, ratings, incidents and the audit log.

Each reads `store` and writes through the `_UndoLog` of the transaction it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from magiclink.adapters.memory._replace import replacer
from magiclink.adapters.memory._store import _MISSING, _UndoLog
from magiclink.domain._enums import AuditAction, BookingStatus, IncidentType
from magiclink.domain._errors import DuplicateRating, InvalidInput
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    Guest,
    Incident,
    NewAuditEntry,
    Rating,
)
from magiclink.ports._repositories import (
    AuditLog,
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

    def add(
        self,
        *,
        uid: str,
        mentor_id: int,
        guest_email: str,
        start_time: datetime,
        end_time: datetime,
        status: BookingStatus,
        revision: int,
    ) -> Booking:
        store = self._tx.store
        if uid in store.booking_by_uid:
            raise InvalidInput("Booking uid already exists")
        booking = Booking(
            id=store.next_id(),
            uid=uid,
            mentor_id=mentor_id,
            guest_email=guest_email,
            start_time=start_time,
            end_time=end_time,
            status=status,
            revision=revision,
        )
        self._tx.put(store.bookings, booking.id, booking)
        self._tx.put(store.booking_by_uid, uid, booking.id)
        return booking

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

    def add(
        self,
        *,
        booking_id: int,
        student_profile_id: str,
        rating: int,
        feedback: str | None,
        created_at: datetime,
        operation_id: str | None = None,
    ) -> Rating:
        store = self._tx.store
        if booking_id in store.rating_by_booking:
            raise DuplicateRating()
        record = Rating(
            id=store.next_id(),
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            rating=rating,
            feedback=feedback,
            created_at=created_at,
            operation_id=operation_id,
        )
        self._tx.put(store.ratings, record.id, record)
        self._tx.put(store.rating_by_booking, booking_id, record.id)
        return record

    def get_by_booking(self, booking_id: int) -> Rating | None:
        store = self._tx.store
        return self._indexed(store.rating_by_booking, store.ratings, booking_id)


class InMemoryIncidentRepository(_Repository, IncidentRepository):
    """Incidents in memory."""

    def add(
        self,
        *,
        booking_uid: str,
        booking_id: int | None,
        student_profile_id: str,
        type: IncidentType,
        description: str,
        reported_by_user_id: int | None,
        created_at: datetime,
        operation_id: str | None = None,
    ) -> Incident:
        store = self._tx.store
        incident = Incident(
            id=store.next_id(),
            booking_uid=booking_uid,
            booking_id=booking_id,
            student_profile_id=student_profile_id,
            type=type,
            description=description,
            reported_by_user_id=reported_by_user_id,
            created_at=created_at,
            operation_id=operation_id,
        )
        self._tx.put(store.incidents, incident.id, incident)
        return incident

    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        return [i for i in self._tx.store.incidents.values() if i.booking_uid == booking_uid]


class InMemoryAuditLog(_Repository, AuditLog):
    """The guest access log in memory, indexed by resource id and guest id."""

    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        tx = self._tx
        store = tx.store
        audit, log = store.audit, tx._undo.append
        for new in entries:
            entry_id = store.next_id()  # fresh: nothing to restore but its absence
            log((audit, entry_id, _MISSING))
            audit[entry_id] = AuditEntry(
                id=entry_id,
                guest_id=new.guest_id,
                endpoint=new.endpoint,
                action=new.action,
                resource_id=new.resource_id,
                success=new.success,
                metadata=new.metadata,
                created_at=new.created_at,
                operation_id=new.operation_id,
            )
            if new.resource_id is not None:
                tx.append_index(store.audit_by_resource, new.resource_id, entry_id)
            if new.guest_id is not None:
                tx.append_index(store.audit_by_guest, new.guest_id, entry_id)
            if new.operation_id is not None:
                tx.append_index(store.audit_by_operation, new.operation_id, entry_id)

    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        store = self._tx.store
        if booking_id is not None:
            ids: Sequence[int] = store.audit_by_resource.get(str(booking_id), ())
        elif guest_id is not None:
            ids = store.audit_by_guest.get(guest_id, ())
        else:
            ids = list(store.audit)
        entries = [store.audit[i] for i in ids]
        if booking_id is not None and guest_id is not None:
            entries = [e for e in entries if e.guest_id == guest_id]
        entries.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return entries[: max(limit, 0)]

    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        store = self._tx.store
        return [store.audit[i] for i in store.audit_by_operation.get(operation_id, ())]

    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        store = self._tx.store
        return sum(
            1
            for i in store.audit_by_guest.get(guest_id, ())
            if (entry := store.audit[i]).action == AuditAction.CREATE_TOKEN
            and entry.metadata.get("path") == path
            and entry.created_at > since
        )


__all__ = [
    "InMemoryAuditLog",
    "InMemoryBookingRepository",
    "InMemoryGuestRepository",
    "InMemoryIncidentRepository",
    "InMemoryRatingRepository",
    "_Repository",
]
