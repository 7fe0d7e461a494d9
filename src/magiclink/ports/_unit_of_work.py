"""The unit of work: one transaction per service operation, shared safely by all threads."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeAlias, TypeVar, overload

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._records import InvalidationResult, MagicLinkToken, NewAuditEntry, TokenLookup
from magiclink.ports import _repositories as repositories

ExcInfo: TypeAlias = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]
"""What `__exit__` receives: the exception's type, the exception and its traceback (or Nones)."""


R = TypeVar("R")


class OnFirstUse(Generic[R]):
    """For `Transaction` implementations: a repository made on first access (by
    `make(transaction)`) and from then on a plain instance attribute, still assignable (a
    test's proxy). `functools.cached_property` without the lock Python 3.11 takes on every
    first access: a transaction is used by one thread at a time."""

    __slots__ = ("_make", "_name")

    def __init__(self, make: Callable[[Any], R]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type[object], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, tx: None, owner: type[object] | None = None) -> Self: ...
    @overload
    def __get__(self, tx: object, owner: type[object] | None = None) -> R: ...
    def __get__(self, tx: object, owner: type[object] | None = None) -> R | Self:
        if tx is None:
            return self
        made = tx.__dict__[self._name] = self._make(tx)
        return made


class Transaction(abc.ABC):
    """One open transaction and the repositories bound to it.

    Use it as a context manager: leaving the block without `commit()`, or by an exception,
    rolls everything back. Changes are visible to other transactions only after `commit()`.
    Work done after a `commit()` belongs to a new transaction, rolled back unless committed
    in turn.
    """

    guests: repositories.GuestRepository
    tokens: repositories.TokenRepository
    bookings: repositories.BookingRepository
    ratings: repositories.RatingRepository
    incidents: repositories.IncidentRepository
    audit: repositories.AuditLog

    def consume_with_audit(self, token_id: int, *, now: datetime, entry: NewAuditEntry) -> bool:
        """Consume the token (`TokenRepository.consume`) and, if that marked it used, append
        its audit `entry` in this transaction; False, and no entry, when it was not live.

        This default is those two calls. An adapter may do both in one statement (the SQL
        adapter on PostgreSQL: a data-modifying CTE, one round trip fewer, issue 15)."""
        if not self.tokens.consume(token_id, now=now):
            return False
        self.audit.add_many([entry])
        return True

    def consume_if_accepted(
        self, token_hash: str, *, now: datetime, booking_id: int | None, entry: NewAuditEntry
    ) -> TokenLookup | None:
        """Consume the token with this hash if verification accepts it at `now` (R7: its guest
        not blocked, the token live, its booking open and current; §9.1: in the scope of
        `booking_id` when one is given) and append `entry.of_token(token)`, all in one
        statement; the token's lookup (the token marked used), or None.

        None says only that this call changed nothing: the token is unknown or refused, a
        concurrent caller won it, or the adapter has no such statement (this default, which
        does nothing). The caller then takes the general path (`TokenRepository.lookup`, the
        refusal rules in their order, `consume_with_audit`), which finds out which. An
        adapter that has the statement (the SQL adapter on PostgreSQL: a data-modifying CTE,
        issue 15.1) makes the consume of a good link one round trip."""
        return None

    def claim_and_add_inbox_token(
        self, email: str, token: MagicLinkToken, entry: NewAuditEntry, *, not_after: datetime
    ) -> MagicLinkToken | None:
        """A guest's request for an inbox link, in one statement: claim the request slot of
        the existing, unblocked guest with the normalized address `email`
        (`GuestRepository.claim_request_slot`: its last request NULL or at most `not_after`,
        then `token.created_at`), store `token` as that guest's (its `guest_id` is not yet
        known: `UNSAVED_ID`) and append `entry.of_token(stored)`; the stored token, or None.

        None says only that this call changed nothing: the guest is unknown, blocked or
        within the interval, or the adapter has no such statement (this default, which does
        nothing; `UnitOfWork.issues_in_one_statement` says which adapters have it). The
        caller then takes the general path, which finds out which. The hourly cap (§9.4)
        is not checked here: a caller with a cap takes the general path, whose count runs
        after the claim, in a snapshot that sees every earlier committed link."""
        return None

    def add_token_with_audit(
        self, token: MagicLinkToken, entry: NewAuditEntry, *, before: Sequence[NewAuditEntry] = ()
    ) -> MagicLinkToken:
        """Store `token`, a new live one whose id is not yet assigned (`TokenRepository.add`),
        and append `before` (e.g. a supersede's entry) then `entry.of_token(stored)` in this
        transaction; the stored token.

        This default is those two calls (one `add_many` of all the entries). An adapter may
        store the token and its entry in one statement (the SQL adapter on PostgreSQL: a
        data-modifying CTE, issue 15.1)."""
        stored = self.tokens.add(token)
        self.audit.add_many([*before, entry.of_token(stored)])
        return stored

    def invalidate_booking_with_audit(
        self, booking_id: int, *, reason: InvalidationReason, now: datetime, entry: NewAuditEntry
    ) -> InvalidationResult:
        """Invalidate the booking's tokens (`TokenRepository.invalidate_by_booking`) and
        append, in this transaction, `entry.counted(guest_id, count)` for each guest whose
        links died, in guest id order; what changed.

        This default is those two calls. An adapter may do both in one statement (the SQL
        adapter on PostgreSQL: a data-modifying CTE, issue 15)."""
        result = self.tokens.invalidate_by_booking(booking_id, reason=reason, now=now)
        killed = sorted(result.per_guest.items())
        self.audit.add_many([entry.counted(guest_id, count) for guest_id, count in killed])
        return result

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

    def __exit__(self, *exc_info: *ExcInfo) -> None:
        self.close()


class UnitOfWork(abc.ABC):
    """Opens transactions on one storage. One instance serves every service and thread.

    `with uow.transaction() as tx:` is the primary form; `with uow as tx:` is the same, for
    the current thread or asyncio task (the stack of open `with` blocks lives in a
    `ContextVar`: tuples, so one task's copy of the context never sees another's).
    """

    programming_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Exceptions of this storage that are the caller's bug, never a storage failure: the
    services let them through unchanged instead of turning them into `StorageError` (the
    SQLAlchemy adapter declares `MissingGreenlet`: an async engine used outside
    `magiclink.asyncio`'s bridge)."""

    def __init__(self) -> None:
        self._stack: ContextVar[tuple[Transaction, ...]] = ContextVar(
            f"magiclink_uow_stack_{id(self)}", default=()
        )

    @abc.abstractmethod
    def transaction(self, *, readonly: bool = False) -> Transaction:
        """Begin a new transaction. `readonly` promises no writes: a hint the adapter may use
        (SQLite begins deferred instead of immediate), not an enforcement."""

    @property
    def issues_in_one_statement(self) -> bool:
        """True when `Transaction.claim_and_add_inbox_token` is one statement that commits by
        itself in `one_write_transaction()` (the SQL adapter on PostgreSQL, issue 15.1): the
        guest path then tries it before the general one. False here: the default does
        nothing, and trying it would only cost a transaction."""
        return False

    def one_write_transaction(self) -> Transaction:
        """A transaction for work whose writes land at most once, through `Transaction`'s
        combined writes (`consume_if_accepted`, `consume_with_audit`,
        `invalidate_booking_with_audit`): an `Operation` with `one_write`.

        The adapter may run such work without a database transaction when that write is
        one statement by itself and its reads gain nothing from sharing a transaction with
        it (the SQL adapter on PostgreSQL, whose READ COMMITTED gives each statement of a
        transaction its own snapshot anyway): each statement then commits by itself. An
        adapter that does so makes those writes one atomic statement. This default is a
        plain write transaction."""
        return self.transaction()

    def __enter__(self) -> Transaction:
        tx = self.transaction()
        self._stack.set((*self._stack.get(), tx))
        return tx.__enter__()

    def __exit__(self, *exc_info: *ExcInfo) -> None:
        *outer, tx = self._stack.get()
        self._stack.set(tuple(outer))
        tx.__exit__(*exc_info)


__all__ = ["ExcInfo", "OnFirstUse", "Transaction", "UnitOfWork"]
