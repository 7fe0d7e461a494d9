"""`InMemoryUnitOfWork` and its transaction: the store's lock held from begin to close."""

from __future__ import annotations

import functools

from magiclink.adapters.memory._repositories import (
    InMemoryAuditLog,
    InMemoryBookingRepository,
    InMemoryGuestRepository,
    InMemoryIncidentRepository,
    InMemoryRatingRepository,
)
from magiclink.adapters.memory._store import _Store, _UndoLog
from magiclink.adapters.memory._token_repository import InMemoryTokenRepository
from magiclink.ports._unit_of_work import Transaction, UnitOfWork


class _InMemoryTransaction(_UndoLog, Transaction):
    """A transaction on a `_Store`: holds the lock, records undo entries, replays on rollback."""

    def __init__(self, store: _Store) -> None:
        super().__init__(store)
        store.lock.acquire()

    # Built on first use: most transactions touch one or two repositories, and building
    # all six per transaction was the largest cost of an in-memory verification.
    @functools.cached_property
    def guests(self) -> InMemoryGuestRepository:  # type: ignore[override]
        return InMemoryGuestRepository(self)

    @functools.cached_property
    def tokens(self) -> InMemoryTokenRepository:  # type: ignore[override]
        return InMemoryTokenRepository(self)

    @functools.cached_property
    def bookings(self) -> InMemoryBookingRepository:  # type: ignore[override]
        return InMemoryBookingRepository(self)

    @functools.cached_property
    def ratings(self) -> InMemoryRatingRepository:  # type: ignore[override]
        return InMemoryRatingRepository(self)

    @functools.cached_property
    def incidents(self) -> InMemoryIncidentRepository:  # type: ignore[override]
        return InMemoryIncidentRepository(self)

    @functools.cached_property
    def audit(self) -> InMemoryAuditLog:  # type: ignore[override]
        return InMemoryAuditLog(self)

    def commit(self) -> None:
        self.store  # noqa: B018 - raises when closed
        self._undo.clear()

    def close(self) -> None:
        if self._open:
            try:
                self.rollback()
            finally:
                self._open = False
                self._store.lock.release()


class InMemoryUnitOfWork(UnitOfWork):
    """Every port in process memory, transactional and thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._store = _Store()

    def transaction(self, *, readonly: bool = False) -> Transaction:
        """Begin a transaction; it holds the store's lock until it is closed.

        The lock is a thread's: under `magiclink.asyncio` a transaction runs from begin to
        close within one greenlet switch (the domain awaits nothing inside a transaction), so
        the tasks of one loop never interleave inside it.
        """
        return _InMemoryTransaction(self._store)


__all__ = ["InMemoryUnitOfWork", "_InMemoryTransaction"]
