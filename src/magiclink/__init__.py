"""magiclink: guest magic links tied to bookings, invalidated when the booking changes.

Everything a host application needs is re-exported here; other modules are internal
except `magiclink.ports` (abstract ports), `magiclink.adapters.*` and `magiclink.testing`.
"""

from magiclink._bootstrap import Services, build_services
from magiclink._outbox import DeliveryReport, OutboxWorker
from magiclink.domain._booking_service import BookingService
from magiclink.domain._enums import (
    AuditAction,
    BookingStatus,
    IncidentType,
    InvalidationReason,
    RefusalReason,
)
from magiclink.domain._errors import (
    AccessDenied,
    BookingClosed,
    BookingNotFound,
    DuplicateRating,
    InvalidInput,
    InvalidToken,
    MagicLinkError,
    RateLimited,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.domain._guest_service import GuestService
from magiclink.domain._quality import QualityRepository
from magiclink.domain._rating_service import RatingService
from magiclink.domain._records import (
    AuditEntry,
    Booking,
    BookingOutcome,
    Guest,
    Incident,
    IssuedToken,
    LinkMessage,
    MagicLinkToken,
    Rating,
    Requester,
    RescheduleOutcome,
    Settings,
    VerifiedToken,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AuditAction",
    "AuditEntry",
    "Booking",
    "BookingClosed",
    "BookingNotFound",
    "BookingOutcome",
    "BookingService",
    "BookingStatus",
    "DeliveryReport",
    "DuplicateRating",
    "Guest",
    "GuestService",
    "Incident",
    "IncidentType",
    "InvalidInput",
    "InvalidToken",
    "InvalidationReason",
    "IssuedToken",
    "LinkMessage",
    "MagicLinkError",
    "MagicLinkToken",
    "OutboxWorker",
    "QualityRepository",
    "RateLimited",
    "Rating",
    "RatingService",
    "RefusalReason",
    "Requester",
    "RescheduleOutcome",
    "Services",
    "Settings",
    "StorageError",
    "TokenExpiredOrUsed",
    "VerifiedToken",
    "build_services",
]
