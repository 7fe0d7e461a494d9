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
    guests = functools.cached_property(InMemoryGuestRepository)
    tokens = functools.cached_property(InMemoryTokenRepository)
    bookings = functools.cached_property(InMemoryBookingRepository)
    ratings = functools.cached_property(InMemoryRatingRepository)
    incidents = functools.cached_property(InMemoryIncidentRepository)
    audit = functools.cached_property(InMemoryAuditLog)

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
