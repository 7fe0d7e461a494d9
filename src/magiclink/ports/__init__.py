"""Abstract ports the domain depends on; adapters implement them."""

from magiclink.ports.clock import Clock, SystemClock
from magiclink.ports.metrics import MetricNames, Metrics, NullMetrics
from magiclink.ports.notifier import Notifier
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
    "MetricNames",
    "Metrics",
    "Notifier",
    "NullMetrics",
    "RatingRepository",
    "SystemClock",
    "TokenRepository",
    "TokenStats",
    "Transaction",
    "UnitOfWork",
]
