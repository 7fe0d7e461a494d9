"""The unit of work: one transaction per service operation, shared safely by all threads."""

from __future__ import annotations

import abc
import threading
from types import TracebackType
from typing import Self

from magiclink.ports.repositories import (
    AuditLog,
    BookingRepository,
    GuestRepository,
    IncidentRepository,
    RatingRepository,
    TokenRepository,
)


class Transaction(abc.ABC):
    """One open transaction and the repositories bound to it.

    Use it as a context manager: leaving the block without `commit()`, or by an exception,
    rolls everything back. Changes are visible to other transactions only after `commit()`.
    Work done after a `commit()` belongs to a new transaction, rolled back unless committed
    in turn.
    """

    guests: GuestRepository
    tokens: TokenRepository
    bookings: BookingRepository
    ratings: RatingRepository
    incidents: IncidentRepository
    audit: AuditLog

    @abc.abstractmethod
    def commit(self) -> None:
        """Make every change of this transaction durable and visible, atomically."""

    @abc.abstractmethod
    def rollback(self) -> None:
        """Discard every change of this transaction."""

    @abc.abstractmethod
    def close(self) -> None:
        """End the transaction, rolling back if it was not committed. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class UnitOfWork(abc.ABC):
    """Opens transactions on one storage. One instance serves every service and thread.

    `with uow.transaction() as tx:` is the primary form; `with uow as tx:` is the same,
    for the current thread.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @abc.abstractmethod
    def transaction(self, *, readonly: bool = False) -> Transaction:
        """Begin a new transaction. `readonly` promises no writes: a hint the adapter may use
        (SQLite begins deferred instead of immediate), not an enforcement."""

    def __enter__(self) -> Transaction:
        stack: list[Transaction] = self._local.__dict__.setdefault("stack", [])
        tx = self.transaction()
        stack.append(tx)
        return tx.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._local.stack.pop().__exit__(exc_type, exc, tb)
