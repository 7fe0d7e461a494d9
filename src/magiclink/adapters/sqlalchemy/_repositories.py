"""SQLAlchemy Core implementations of the repository ports.

The statements are those of `_statements`, built once at import; rows become records, and
records insert parameters, through `_rows`, by column name. The token repository, the hot
path, has its own module; it is exported from here with the others.

Each repository method issues a fixed number of statements, whatever the number of tokens or
guests involved (R10.5); the counts are listed in docs and checked by the integration tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy.exc import IntegrityError

from magiclink.adapters.sqlalchemy import _statements as sql
from magiclink.adapters.sqlalchemy._errors import translating
from magiclink.adapters.sqlalchemy._repository_base import (
    ConnectionSource,
    SqlAlchemyRepository,
    new_id,
)
from magiclink.adapters.sqlalchemy._rows import (
    audit_from_row,
    audit_values,
    booking_from_row,
    booking_values,
    guest_from_row,
    guest_values,
    incident_from_row,
    incident_values,
    rating_from_row,
    rating_values,
)
from magiclink.adapters.sqlalchemy._token_repository import SqlAlchemyTokenRepository
from magiclink.domain._records import (
    UNSAVED_ID,
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


class SqlAlchemyGuestRepository(SqlAlchemyRepository, GuestRepository):
    """Guests in `magiclink_guests`."""

    @translating
    def get(self, guest_id: int) -> Guest | None:
        """The guest with this id, or None (one SELECT)."""
        return self._first(sql.GET_GUEST, {"p_id": guest_id}, guest_from_row)

    @translating
    def get_by_email(self, normalized_email: str) -> Guest | None:
        """The guest with this normalized e-mail, or None (one SELECT)."""
        return self._first(sql.GET_GUEST_BY_EMAIL, {"p_email": normalized_email}, guest_from_row)

    @translating
    def get_or_create(
        self, normalized_email: str, *, now: datetime, last_request_at: datetime | None
    ) -> tuple[Guest, bool]:
        """The guest with this e-mail and whether this call created it.

        A SELECT first (the common case: the guest exists); else an INSERT in a SAVEPOINT.
        If a concurrent transaction created the same e-mail first, the INSERT fails on the
        unique e-mail, the savepoint is rolled back, and the winner is read and returned.
        """
        existing = self.get_by_email(normalized_email)
        if existing is not None:
            return existing, False
        guest = Guest(
            id=UNSAVED_ID,
            normalized_email=normalized_email,
            blocked=False,
            last_request_at=last_request_at,
            created_at=now,
        )
        conn = self._source.connection()
        try:
            # Always a savepoint here: losing this race is expected, not an error.
            with conn.begin_nested():
                guest_id = new_id(conn.execute(sql.INSERT_GUEST, guest_values(guest)))
        except IntegrityError:
            winner = self.get_by_email(normalized_email)
            if winner is None:
                raise  # not the unique e-mail after all: translated as a storage error
            return winner, False
        return attrs.evolve(guest, id=guest_id), True

    @translating
    def claim_request_slot(self, guest_id: int, *, now: datetime, not_after: datetime) -> bool:
        """Set `last_request_at = now` if NULL or `<= not_after` (one conditional UPDATE)."""
        params = {"p_id": guest_id, "p_now": now, "p_not_after": not_after}
        return self._rowcount(sql.CLAIM_REQUEST_SLOT, params) == 1

    @translating
    def set_blocked(self, guest_id: int, blocked: bool) -> Guest | None:
        """Set `blocked`; the updated guest or None (UPDATE ... RETURNING, else UPDATE+SELECT)."""
        conn = self._source.connection()
        params = {"p_id": guest_id, "p_blocked": blocked}
        if conn.dialect.update_returning:
            return self._first(sql.SET_BLOCKED_RETURNING, params, guest_from_row)
        if conn.execute(sql.SET_BLOCKED, params).rowcount == 0:
            return None
        return self.get(guest_id)


class SqlAlchemyBookingRepository(SqlAlchemyRepository, BookingRepository):
    """Bookings in `magiclink_bookings`."""

    @translating
    def add(self, booking: Booking) -> Booking:
        """Store a new booking (one INSERT); a duplicate uid raises `InvalidInput`."""
        new = self._insert_guarded(sql.INSERT_BOOKING, booking_values(booking))
        return attrs.evolve(booking, id=new)

    @translating
    def get(self, booking_id: int, *, for_update: bool = False) -> Booking | None:
        """The booking or None (one SELECT, `FOR UPDATE` when asked, except on SQLite)."""
        statement = sql.GET_BOOKING_FOR_UPDATE if for_update else sql.GET_BOOKING
        return self._first(statement, {"p_id": booking_id}, booking_from_row)

    @translating
    def get_by_uid(self, uid: str) -> Booking | None:
        """The booking with this uid, or None (one SELECT)."""
        return self._first(sql.GET_BOOKING_BY_UID, {"p_uid": uid}, booking_from_row)

    @translating
    def update(self, booking: Booking) -> None:
        """Write status, times, revision and operation id (one UPDATE); an unknown id
        changes nothing."""
        self._source.connection().execute(
            sql.UPDATE_BOOKING,
            {
                "p_id": booking.id,
                "p_status": str(booking.status),
                "p_start": booking.start_time,
                "p_end": booking.end_time,
                "p_revision": booking.revision,
                "p_operation": booking.operation_id,
            },
        )

    @translating
    def revoke_links(self, booking_id: int) -> None:
        """Advance the booking's link generation (one UPDATE, atomic in the database)."""
        self._source.connection().execute(sql.REVOKE_BOOKING_LINKS, {"p_id": booking_id})


class SqlAlchemyRatingRepository(SqlAlchemyRepository, RatingRepository):
    """Ratings in `magiclink_ratings`, unique per booking."""

    @translating
    def add(self, rating: Rating) -> Rating:
        """Store a rating (one INSERT); a second one for the booking raises `DuplicateRating`."""
        new = self._insert_guarded(sql.INSERT_RATING, rating_values(rating))
        return attrs.evolve(rating, id=new)

    @translating
    def get_by_booking(self, booking_id: int) -> Rating | None:
        """The booking's rating, or None (one SELECT)."""
        return self._first(sql.GET_RATING_BY_BOOKING, {"p_booking": booking_id}, rating_from_row)


class SqlAlchemyIncidentRepository(SqlAlchemyRepository, IncidentRepository):
    """Incident reports in `magiclink_incidents`."""

    @translating
    def add(self, incident: Incident) -> Incident:
        """Store an incident (one INSERT)."""
        result = self._source.connection().execute(sql.INSERT_INCIDENT, incident_values(incident))
        return attrs.evolve(incident, id=new_id(result))

    @translating
    def list_by_booking_uid(self, booking_uid: str) -> list[Incident]:
        """Incidents for this booking uid, oldest first (one SELECT)."""
        return self._all(sql.LIST_INCIDENTS_BY_UID, {"p_uid": booking_uid}, incident_from_row)


class SqlAlchemyAuditLog(SqlAlchemyRepository, AuditLog):
    """The guest access log in `magiclink_audit_log`."""

    @translating
    def add_many(self, entries: Sequence[NewAuditEntry]) -> None:
        """Append the entries in one INSERT (a batched one, executemany, for several);
        nothing when empty. One entry (consume, issue, a one-guest invalidation) goes on the
        fast path when there is one, without RETURNING: the log never needs the new id."""
        if not entries:
            return
        fast = self._fast
        if len(entries) == 1 and fast is not None and fast.usable():
            fast.rowcount(self._fast_connection(), "insert_audit", audit_values(entries[0]))
            return
        self._source.connection().execute(
            sql.INSERT_AUDIT, [audit_values(entry) for entry in entries]
        )

    @translating
    def list(
        self, *, booking_id: int | None = None, guest_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Entries newest first, filtered by booking (`resource_id`) and/or guest (one SELECT)."""
        if limit <= 0:
            return []
        statement = sql.LIST_AUDIT[booking_id is not None, guest_id is not None]
        params: dict[str, Any] = {"p_limit": limit}
        if booking_id is not None:
            params["p_resource"] = str(booking_id)
        if guest_id is not None:
            params["p_guest"] = guest_id
        return self._all(statement, params, audit_from_row)

    @translating
    def by_operation(self, operation_id: str) -> Sequence[AuditEntry]:
        """The entries written with `operation_id`, in insertion order (one indexed SELECT)."""
        return self._all(sql.AUDIT_OF_OPERATION, {"p_operation": operation_id}, audit_from_row)

    @translating
    def count_links_issued(self, guest_id: int, *, path: str, since: datetime) -> int:
        """The guest's `CREATE_TOKEN` entries of `path` after `since` (one SELECT COUNT)."""
        params = {"p_guest": guest_id, "p_path": path, "p_since": since}
        return int(self._source.connection().execute(sql.COUNT_LINKS_ISSUED, params).scalar_one())


__all__ = [
    "ConnectionSource",
    "SqlAlchemyAuditLog",
    "SqlAlchemyBookingRepository",
    "SqlAlchemyGuestRepository",
    "SqlAlchemyIncidentRepository",
    "SqlAlchemyRatingRepository",
    "SqlAlchemyTokenRepository",
]
