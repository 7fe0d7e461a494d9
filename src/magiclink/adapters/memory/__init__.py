"""In-memory adapters: shipped code, the default storage for tests and small hosts.

`InMemoryUnitOfWork` implements every port with real transaction semantics: a transaction
holds the store's lock from start to end (so transactions are serializable and racing
consumers see each other's commits), writes go to the store through an undo log, and a
rollback — explicit, by exception, or by leaving the block without commit — replays it.
`InMemoryOutbox` shares those transactions.
"""

from magiclink.adapters.memory._core import (
    InMemoryAuditLog,
    InMemoryBookingRepository,
    InMemoryGuestRepository,
    InMemoryIncidentRepository,
    InMemoryMetrics,
    InMemoryNotifier,
    InMemoryRatingRepository,
    InMemoryTokenRepository,
    InMemoryUnitOfWork,
    ManualClock,
)
from magiclink.adapters.memory._outbox import InMemoryOutbox

__all__ = [
    "InMemoryAuditLog",
    "InMemoryBookingRepository",
    "InMemoryGuestRepository",
    "InMemoryIncidentRepository",
    "InMemoryMetrics",
    "InMemoryNotifier",
    "InMemoryOutbox",
    "InMemoryRatingRepository",
    "InMemoryTokenRepository",
    "InMemoryUnitOfWork",
    "ManualClock",
]
