"""`InMemoryUnitOfWork` and its transaction: the store's lock held from begin to close."""

from __future__ import annotations

from magiclink.adapters.memory._audit_log import InMemoryAuditLog
from magiclink.adapters.memory._repositories import (
    InMemoryBookingRepository,
    InMemoryGuestRepository,
    InMemoryIncidentRepository,
    InMemoryRatingRepository,
)
from magiclink.adapters.memory._store import _CLOSED, _Store, _UndoLog
from magiclink.adapters.memory._token_repository import InMemoryTokenRepository
from magiclink.domain._errors import StorageError
from magiclink.ports._unit_of_work import OnFirstUse, Transaction, UnitOfWork


class _InMemoryTransaction(_UndoLog, Transaction):
    """A transaction on a `_Store`: holds the lock, records undo entries, replays on rollback."""

    def __init__(self, store: _Store) -> None:
        store.lock.acquire()
        self.store = self._store = store
        self._undo = []
        self.tokens = InMemoryTokenRepository(self)

    # Built on first use (the tokens, which nearly every transaction reads, at begin):
    # building all six per transaction was the largest cost of an in-memory verification.
    guests = OnFirstUse(InMemoryGuestRepository)
    bookings = OnFirstUse(InMemoryBookingRepository)
    ratings = OnFirstUse(InMemoryRatingRepository)
    incidents = OnFirstUse(InMemoryIncidentRepository)
    audit = OnFirstUse(InMemoryAuditLog)

    def commit(self) -> None:
        if self.store is _CLOSED:
            raise StorageError("Transaction is closed")
        self._undo.clear()

    def close(self) -> None:
        if self.store is _CLOSED:
            return
        try:
            if self._undo:
                self.rollback()
        finally:
            self.store = _CLOSED
            self._store.lock.release()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


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
