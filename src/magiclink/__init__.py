"""magiclink: guest magic links tied to bookings, invalidated when the booking changes.

Everything a host application needs is re-exported here; other modules are internal
except `magiclink.ports` (abstract ports), `magiclink.adapters.*` and `magiclink.testing`.

Besides the services, their records and errors, some names are public on purpose because a
host needs them outside a service call:

* `hash_token` and `generate_raw_token`: a data migration that imports existing links stores
  their hashes and can mint raw tokens of the library's format (docs/migration.md);
* `normalize_email`: the §9.2 normal form, so a host can match or migrate its own address
  columns to the guests magiclink stores;
* `run_in_transaction` and `rerun`: the transaction runner (one retry of a transient fault,
  no blind retry of an unsure commit) for a host's own data migrations over the ports;
* `Events` and `IssuePath`: the log event names and the `path` label values of the metrics,
  for a host's log queries, dashboards and alerts (docs/operations.md).
"""

from magiclink._bootstrap import Services, build_services
from magiclink._outbox import DeliveryReport, OutboxWorker
from magiclink.domain._booking_service import BookingService
from magiclink.domain._enums import (
    AuditAction,
    BookingStatus,
    IncidentType,
    InvalidationReason,
    IssuePath,
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
from magiclink.domain._observability import Events
from magiclink.domain._policy import generate_raw_token, hash_token, normalize_email
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
from magiclink.domain._transactions import rerun, run_in_transaction

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
    "Events",
    "Guest",
    "GuestService",
    "Incident",
    "IncidentType",
    "InvalidInput",
    "InvalidToken",
    "InvalidationReason",
    "IssuePath",
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
    "generate_raw_token",
    "hash_token",
    "normalize_email",
    "rerun",
    "run_in_transaction",
]
