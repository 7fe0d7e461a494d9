"""Enumerations of the domain. Each member's value is its name lower-cased."""

from __future__ import annotations

import enum


class BookingStatus(enum.StrEnum):
    """Where a booking stands in its life."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    COMPLETED = "completed"

    @property
    def is_closed(self) -> bool:
        """A closed booking (cancelled or no-show) kills its links and accepts no change."""
        return self in _CLOSED


_CLOSED = frozenset({BookingStatus.CANCELLED, BookingStatus.NO_SHOW})
OPEN_BOOKING_STATUSES = frozenset({BookingStatus.SCHEDULED, BookingStatus.COMPLETED})


class InvalidationReason(enum.StrEnum):
    """Why a token was invalidated; stored on the token and in the audit entry."""

    BOOKING_CANCELLED = "booking_cancelled"
    BOOKING_RESCHEDULED = "booking_rescheduled"
    RATING_SUBMITTED = "rating_submitted"
    INCIDENT_REPORTED = "incident_reported"
    MANUAL_REVOCATION = "manual_revocation"
    REUSE_DETECTED = "reuse_detected"
    SUPERSEDED = "superseded"
    DELIVERY_FAILED = "delivery_failed"
    GUEST_BLOCKED = "guest_blocked"


class IncidentType(enum.StrEnum):
    """The kind of problem an incident reports."""

    NO_SHOW = "no_show"
    LATE = "late"
    INAPPROPRIATE_BEHAVIOR = "inappropriate_behavior"
    TECHNICAL_ISSUE = "technical_issue"
    OTHER = "other"


class AuditAction(enum.StrEnum):
    """The action column of the guest access log."""

    CREATE_TOKEN = "CREATE_TOKEN"
    VERIFY_TOKEN = "VERIFY_TOKEN"
    CONSUME_TOKEN = "CONSUME_TOKEN"
    INVALIDATE_TOKEN = "INVALIDATE_TOKEN"
    BLOCK_GUEST = "BLOCK_GUEST"
    UNBLOCK_GUEST = "UNBLOCK_GUEST"


class RefusalReason(enum.StrEnum):
    """Why verification refused a known token (`metadata["reason"]` of `VERIFY_TOKEN`)."""

    BLOCKED = "blocked"
    INVALIDATED = "invalidated"
    USED = "used"
    EXPIRED = "expired"
    BOOKING_CLOSED = "booking_closed"
    BOOKING_RESCHEDULED = "booking_rescheduled"
    BOOKING_MISSING = "booking_missing"
    WRONG_BOOKING = "wrong_booking"
    LINKS_REVOKED = "links_revoked"


class IssuePath(enum.StrEnum):
    """Which creation path issued a token (a metrics label)."""

    INBOX = "inbox"
    BOOKING = "booking"
    RESCHEDULE = "reschedule"


__all__ = [
    "OPEN_BOOKING_STATUSES",
    "AuditAction",
    "BookingStatus",
    "IncidentType",
    "InvalidationReason",
    "IssuePath",
    "RefusalReason",
]
