"""Abstract ports the domain depends on; adapters implement them.

The records an adapter builds or returns (`TokenLookup`, `NewAuditEntry`,
`InvalidationResult`, `TokenStats`) are re-exported here, so an adapter needs no internal
module, and `UNSAVED_ID`, the id of a record a repository's `add` is about to store.

`MetricNames`, with `COUNTERS` and `OBSERVATIONS` (which names are counters and which are
histograms), is public for a host's own `Metrics` adapter and its dashboards.
"""

from magiclink.domain._records import UNSAVED_ID, InvalidationResult, NewAuditEntry, TokenLookup
from magiclink.ports._clock import Clock, SystemClock
from magiclink.ports._metrics import COUNTERS, OBSERVATIONS, MetricNames, Metrics, NullMetrics
from magiclink.ports._notifier import Notifier
from magiclink.ports._outbox import Outbox, OutboxMessage, OutboxState, OutboxStatus
from magiclink.ports._repositories import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
    TokenStats,
)
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

__all__ = [
    "COUNTERS",
    "OBSERVATIONS",
    "UNSAVED_ID",
    "AuditLog",
    "BookingRepository",
    "Clock",
    "GuestRepository",
    "IncidentRepository",
    "InvalidationResult",
    "MetricNames",
    "Metrics",
    "NewAuditEntry",
    "Notifier",
    "NullMetrics",
    "Outbox",
    "OutboxMessage",
    "OutboxState",
    "OutboxStatus",
    "RatingRepository",
    "SystemClock",
    "TokenLookup",
    "TokenRepository",
    "TokenStats",
    "Transaction",
    "UnitOfWork",
]
