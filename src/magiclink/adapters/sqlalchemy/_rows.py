"""Rows to records and records to rows, by column name.

Every column a statement selects carries a label, `<record>_<column>` (`token_id`,
`guest_created_at`, `booking_status`): unique across the tables the token lookup joins, and
the same in every statement that selects that column. The `*_from_row` functions read a
row's values by those labels through `Row._mapping` (a view over the row, nothing copied),
never by position: a statement may list its columns in any order. Values are translated
explicitly into the frozen domain records (strings back to `StrEnum` members; times come back
timezone-aware UTC from `UTCDateTime`).

The `*_values` functions are the other way: a record's column values to insert, keyed by
column name (the id aside, which the database assigns). An `add` builds its record once,
with `UNSAVED_ID`, inserts that record's values and returns the record with the new id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import Column, Label, RowMapping

from magiclink.adapters.sqlalchemy._tables import (
    audit_log,
    bookings,
    guests,
    incidents,
    ratings,
    tokens,
)
from magiclink.domain._enums import BookingStatus, IncidentType, InvalidationReason
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
from magiclink.ports._repositories import TokenStats

UNSAVED_ID: Final = 0
"""The id of a record built before its INSERT, which `attrs.evolve` replaces by the new id."""


def _labelled(prefix: str, *columns: Column[Any]) -> tuple[Label[Any], ...]:
    """The columns labelled `<prefix>_<column name>`."""
    return tuple(column.label(f"{prefix}_{column.name}") for column in columns)


# --- Selected columns, labelled -----------------------------------------------------------

GUEST_COLUMNS: Final = _labelled(
    "guest",
    guests.c.id,
    guests.c.normalized_email,
    guests.c.blocked,
    guests.c.last_request_at,
    guests.c.created_at,
)
BOOKING_COLUMNS: Final = _labelled(
    "booking",
    bookings.c.id,
    bookings.c.uid,
    bookings.c.mentor_id,
    bookings.c.guest_email,
    bookings.c.start_time,
    bookings.c.end_time,
    bookings.c.status,
    bookings.c.revision,
    bookings.c.link_generation,
    bookings.c.operation_id,
)
TOKEN_COLUMNS: Final = _labelled(
    "token",
    tokens.c.id,
    tokens.c.token_hash,
    tokens.c.guest_id,
    tokens.c.booking_id,
    tokens.c.booking_revision,
    tokens.c.expires_at,
    tokens.c.used_at,
    tokens.c.invalidated,
    tokens.c.invalidation_reason,
    tokens.c.created_at,
    tokens.c.link_generation,
)
# R7: the token, its guest, and its booking's state if the booking still exists.
LOOKUP_COLUMNS: Final = (
    *TOKEN_COLUMNS,
    *GUEST_COLUMNS,
    *_labelled("booking", bookings.c.status, bookings.c.revision, bookings.c.link_generation),
)
AUDIT_COLUMNS: Final = _labelled(
    "audit",
    audit_log.c.id,
    audit_log.c.guest_id,
    audit_log.c.endpoint,
    audit_log.c.action,
    audit_log.c.resource_id,
    audit_log.c.success,
    audit_log.c.metadata,
    audit_log.c.created_at,
    audit_log.c.operation_id,
)
RATING_COLUMNS: Final = _labelled(
    "rating",
    ratings.c.id,
    ratings.c.booking_id,
    ratings.c.student_profile_id,
    ratings.c.rating,
    ratings.c.feedback,
    ratings.c.created_at,
    ratings.c.operation_id,
)
INCIDENT_COLUMNS: Final = _labelled(
    "incident",
    incidents.c.id,
    incidents.c.booking_uid,
    incidents.c.booking_id,
    incidents.c.student_profile_id,
    incidents.c.type,
    incidents.c.description,
    incidents.c.reported_by_user_id,
    incidents.c.created_at,
    incidents.c.operation_id,
)


# --- Row -> record ------------------------------------------------------------------------


def guest_from_row(row: RowMapping) -> Guest:
    """The `Guest` in a row holding `GUEST_COLUMNS`."""
    return Guest(
        id=row["guest_id"],
        normalized_email=row["guest_normalized_email"],
        blocked=bool(row["guest_blocked"]),
        last_request_at=row["guest_last_request_at"],
        created_at=row["guest_created_at"],
    )


def booking_from_row(row: RowMapping) -> Booking:
    """The `Booking` in a row holding `BOOKING_COLUMNS`."""
    return Booking(
        id=row["booking_id"],
        uid=row["booking_uid"],
        mentor_id=row["booking_mentor_id"],
        guest_email=row["booking_guest_email"],
        start_time=row["booking_start_time"],
        end_time=row["booking_end_time"],
        status=BookingStatus(row["booking_status"]),
        revision=row["booking_revision"],
        link_generation=row["booking_link_generation"],
        operation_id=row["booking_operation_id"],
    )


def token_from_row(row: RowMapping) -> MagicLinkToken:
    """The `MagicLinkToken` in a row holding `TOKEN_COLUMNS`."""
    reason = row["token_invalidation_reason"]
    return MagicLinkToken(
        id=row["token_id"],
        token_hash=row["token_token_hash"],
        guest_id=row["token_guest_id"],
        booking_id=row["token_booking_id"],
        booking_revision=row["token_booking_revision"],
        expires_at=row["token_expires_at"],
        used_at=row["token_used_at"],
        invalidated=bool(row["token_invalidated"]),
        invalidation_reason=None if reason is None else InvalidationReason(reason),
        created_at=row["token_created_at"],
        link_generation=row["token_link_generation"],
    )


def lookup_from_row(row: RowMapping) -> TokenLookup:
    """The `TokenLookup` in a row holding `LOOKUP_COLUMNS` (booking state None: no booking)."""
    status = row["booking_status"]
    return TokenLookup(
        token=token_from_row(row),
        guest=guest_from_row(row),
        booking_status=None if status is None else BookingStatus(status),
        booking_revision=row["booking_revision"],
        booking_link_generation=row["booking_link_generation"],
    )


def audit_from_row(row: RowMapping) -> AuditEntry:
    """The `AuditEntry` in a row holding `AUDIT_COLUMNS`."""
    return AuditEntry(
        id=row["audit_id"],
        guest_id=row["audit_guest_id"],
        endpoint=row["audit_endpoint"],
        action=row["audit_action"],
        resource_id=row["audit_resource_id"],
        success=bool(row["audit_success"]),
        metadata=row["audit_metadata"],
        created_at=row["audit_created_at"],
        operation_id=row["audit_operation_id"],
    )


def rating_from_row(row: RowMapping) -> Rating:
    """The `Rating` in a row holding `RATING_COLUMNS`."""
    return Rating(
        id=row["rating_id"],
        booking_id=row["rating_booking_id"],
        student_profile_id=row["rating_student_profile_id"],
        rating=row["rating_rating"],
        feedback=row["rating_feedback"],
        created_at=row["rating_created_at"],
        operation_id=row["rating_operation_id"],
    )


def incident_from_row(row: RowMapping) -> Incident:
    """The `Incident` in a row holding `INCIDENT_COLUMNS`."""
    return Incident(
        id=row["incident_id"],
        booking_uid=row["incident_booking_uid"],
        booking_id=row["incident_booking_id"],
        student_profile_id=row["incident_student_profile_id"],
        type=IncidentType(row["incident_type"]),
        description=row["incident_description"],
        reported_by_user_id=row["incident_reported_by_user_id"],
        created_at=row["incident_created_at"],
        operation_id=row["incident_operation_id"],
    )


def invalidation_from_rows(rows: Iterable[RowMapping]) -> InvalidationResult:
    """Newly invalidated tokens per guest, from rows of `guest_id` and their count `n`."""
    return InvalidationResult(per_guest={row["guest_id"]: int(row["n"]) for row in rows})


def stats_from_rows(totals: RowMapping, by_reason: Iterable[RowMapping]) -> TokenStats:
    """`TokenStats` from the row of `live`, `expired`, `used` and `invalidated` counts and
    the rows of `reason` and its count `n`."""
    return TokenStats(
        live=int(totals["live"]),
        expired=int(totals["expired"]),
        used=int(totals["used"]),
        invalidated=int(totals["invalidated"]),
        invalidated_by_reason={str(row["reason"]): int(row["n"]) for row in by_reason},
    )


# --- Record -> row values (insert parameters, keyed by column name) -----------------------


def guest_values(guest: Guest) -> dict[str, Any]:
    """The columns of a new guest row."""
    return {
        "normalized_email": guest.normalized_email,
        "blocked": guest.blocked,
        "last_request_at": guest.last_request_at,
        "created_at": guest.created_at,
    }


def booking_values(booking: Booking) -> dict[str, Any]:
    """The columns of a new booking row."""
    return {
        "uid": booking.uid,
        "mentor_id": booking.mentor_id,
        "guest_email": booking.guest_email,
        "start_time": booking.start_time,
        "end_time": booking.end_time,
        "status": str(booking.status),
        "revision": booking.revision,
        "link_generation": booking.link_generation,
        "operation_id": booking.operation_id,
    }


def token_values(token: MagicLinkToken) -> dict[str, Any]:
    """The columns of a new token row."""
    reason = token.invalidation_reason
    return {
        "token_hash": token.token_hash,
        "guest_id": token.guest_id,
        "booking_id": token.booking_id,
        "booking_revision": token.booking_revision,
        "expires_at": token.expires_at,
        "used_at": token.used_at,
        "invalidated": token.invalidated,
        "invalidation_reason": None if reason is None else str(reason),
        "created_at": token.created_at,
        "link_generation": token.link_generation,
    }


def audit_values(entry: NewAuditEntry) -> dict[str, Any]:
    """The columns of a new audit row."""
    return {
        "guest_id": entry.guest_id,
        "endpoint": entry.endpoint,
        "action": str(entry.action),
        "resource_id": entry.resource_id,
        "success": entry.success,
        "metadata": dict(entry.metadata),
        "created_at": entry.created_at,
        "operation_id": entry.operation_id,
    }


def rating_values(rating: Rating) -> dict[str, Any]:
    """The columns of a new rating row."""
    return {
        "booking_id": rating.booking_id,
        "student_profile_id": rating.student_profile_id,
        "rating": rating.rating,
        "feedback": rating.feedback,
        "created_at": rating.created_at,
        "operation_id": rating.operation_id,
    }


def incident_values(incident: Incident) -> dict[str, Any]:
    """The columns of a new incident row."""
    return {
        "booking_uid": incident.booking_uid,
        "booking_id": incident.booking_id,
        "student_profile_id": incident.student_profile_id,
        "type": str(incident.type),
        "description": incident.description,
        "reported_by_user_id": incident.reported_by_user_id,
        "created_at": incident.created_at,
        "operation_id": incident.operation_id,
    }


__all__ = [
    "AUDIT_COLUMNS",
    "BOOKING_COLUMNS",
    "GUEST_COLUMNS",
    "INCIDENT_COLUMNS",
    "LOOKUP_COLUMNS",
    "RATING_COLUMNS",
    "TOKEN_COLUMNS",
    "UNSAVED_ID",
    "audit_from_row",
    "audit_values",
    "booking_from_row",
    "booking_values",
    "guest_from_row",
    "guest_values",
    "incident_from_row",
    "incident_values",
    "invalidation_from_rows",
    "lookup_from_row",
    "rating_from_row",
    "rating_values",
    "stats_from_rows",
    "token_from_row",
    "token_values",
]
