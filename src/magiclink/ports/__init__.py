"""Abstract ports the domain depends on; adapters implement them.

The records an adapter builds or returns (`TokenLookup`, `NewAuditEntry`,
`InvalidationResult`, `TokenStats`) are re-exported here, so an adapter needs no internal
module.
"""

from magiclink.domain.records import InvalidationResult, NewAuditEntry, TokenLookup
from magiclink.ports.clock import Clock, SystemClock
from magiclink.ports.metrics import MetricNames, Metrics, NullMetrics
from magiclink.ports.notifier import Notifier
from magiclink.ports.outbox import Outbox, OutboxMessage, OutboxState, OutboxStatus
from magiclink.ports.repositories import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
    TokenStats,
)
from magiclink.ports.unit_of_work import Transaction, UnitOfWork

__all__ = [
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
