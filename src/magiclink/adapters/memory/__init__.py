"""In-memory adapters: shipped code, the default storage for tests and small hosts.

`InMemoryUnitOfWork` implements every port with real transaction semantics: a transaction
holds the store's lock from start to end (so transactions are serializable and racing
consumers see each other's commits), writes go to the store through an undo log, and a
rollback — explicit, by exception, or by leaving the block without commit — replays it.
`InMemoryOutbox` shares those transactions.
"""

from magiclink.adapters.memory._audit_log import InMemoryAuditLog
from magiclink.adapters.memory._clock import ManualClock
from magiclink.adapters.memory._metrics import InMemoryMetrics
from magiclink.adapters.memory._notifier import InMemoryNotifier
from magiclink.adapters.memory._outbox import InMemoryOutbox
from magiclink.adapters.memory._repositories import (
    InMemoryBookingRepository,
    InMemoryGuestRepository,
    InMemoryIncidentRepository,
    InMemoryRatingRepository,
)
from magiclink.adapters.memory._token_repository import InMemoryTokenRepository
from magiclink.adapters.memory._unit_of_work import InMemoryUnitOfWork

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
