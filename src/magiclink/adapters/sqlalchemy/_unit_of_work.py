"""The SQLAlchemy unit of work: one pooled connection and one database transaction per
`transaction()`.

What it does to the host's engine — nothing global: no event listener, no engine option. Each
transaction checks out one connection from the engine's pool, sets only what it must on that
connection (SQLAlchemy reverts per-connection options when the connection goes back to the
pool), and returns it on `close()`.

How each dialect's checkout is set up, and why (SQLite's `BEGIN IMMEDIATE` and PRAGMAs,
READ COMMITTED on PostgreSQL and MariaDB), is told in `_connections`.

**Read-only transactions** (issue 15: one round trip where one statement suffices) open no
database transaction of their own on PostgreSQL and SQLite: on PostgreSQL the checkout runs
in AUTOCOMMIT (psycopg sends no BEGIN and no COMMIT; SQLAlchemy reverts the setting on
return to the pool, without a round trip — with psycopg 3 and no execution options on the
engine, the unit of work flips the DBAPI connection's `autocommit` itself and flips it back
in `close()`, which the profile showed cheaper than the isolation-level bookkeeping), on
SQLite no BEGIN is sent (pysqlite begins nothing before a SELECT). Each statement then reads committed data as of its own start,
which is what READ COMMITTED gave each statement before: a read-only operation of several
statements was never one snapshot on PostgreSQL. The same checkout serves a consume on
PostgreSQL (`one_write_transaction`): its one write is a single statement. On MariaDB a read-only transaction is the
write one's (its driver would spend a round trip to switch autocommit on and one to switch
it off).

Other dialects run at the engine's own settings.

**The hot path** (`_fastpath`): with pysqlite and psycopg 3 every constant statement the
repositories run, and SQLite's `BEGIN IMMEDIATE`, runs pre-compiled on this transaction's
DBAPI connection, inside the same database transaction; and a transaction, read-only or
not, starts on the bare pooled connection, wrapping it in a Core `Connection` only when a
statement outside the fast path needs one (a PostgreSQL write once the connection's resting
level is known to be READ COMMITTED). An engine with an event listener, execution options
or a `schema_translate_map` gets Core for every statement instead.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import ClassVar

from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc

from magiclink.adapters.sqlalchemy._connections import (
    Flavour,
    configure_sqlite_once,
    enter_autocommit,
    prepare_checkout,
    rests_read_committed,
)
from magiclink.adapters.sqlalchemy._errors import translate
from magiclink.adapters.sqlalchemy._fastpath import FastPath, fast_path_for
from magiclink.adapters.sqlalchemy._transaction import SqlAlchemyTransaction
from magiclink.domain._errors import MagicLinkError
from magiclink.ports._unit_of_work import ExcInfo, UnitOfWork


class _Checkout(AbstractContextManager[None]):
    """Driver errors of a checkout as `StorageError`; a programming error of the storage
    passes through unwrapped (an async engine used outside the greenlet bridge: the caller's
    bug, not an outage; the first checkout is where it always shows). Stateless per unit of
    work, so one instance serves every checkout (no generator per call)."""

    __slots__ = ("_programming_errors",)

    def __init__(self, programming_errors: tuple[type[BaseException], ...]) -> None:
        self._programming_errors = programming_errors

    def __exit__(self, *exc_info: *ExcInfo) -> None:
        error = exc_info[1]
        if error is None or isinstance(error, self._programming_errors):
            return  # propagates unchanged (or nothing to do)
        if isinstance(error, MagicLinkError) or not isinstance(error, Exception):
            return
        translated = translate(error)
        if translated is not None:
            raise translated from error


class SqlAlchemyUnitOfWork(UnitOfWork):
    """The unit of work over any SQLAlchemy `Engine` (SQLite, PostgreSQL, MariaDB/MySQL).

    One instance serves every service and thread: each `transaction()` checks out its own
    connection. Nothing connects until the first transaction. See the module docstring for
    what is set on each connection.
    """

    programming_errors: ClassVar[tuple[type[BaseException], ...]] = (sa_exc.MissingGreenlet,)
    """Exceptions that are the caller's bug, never a storage failure: raised unchanged by
    `transaction()` instead of becoming `StorageError` (an `AsyncEngine`'s `sync_engine`
    used outside `magiclink.asyncio`'s greenlet bridge raises `MissingGreenlet`)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine
        self._flavour = Flavour.of(engine)
        # The token hot path's statements, compiled once for this engine (`_fastpath`).
        self._fast = fast_path_for(engine)
        self._checkout_errors = _Checkout(self.programming_errors)

    @property
    def engine(self) -> Engine:
        """The engine this unit of work draws its connections from."""
        return self._engine

    def transaction(self, *, readonly: bool = False) -> SqlAlchemyTransaction:
        """Check out a connection and return a transaction on it (begun on first use).

        Raises:
            StorageError: no connection could be obtained (transient when the server is
                unreachable or the pool timed out).
        """
        fast = self._fast
        if fast is not None and fast.bare() and not self._engine.get_execution_options():
            bare = self._bare_transaction(fast, readonly=readonly)
            if bare is not None:
                return bare
        with self._checkout():
            connection = self._engine.connect()
            try:
                restore = prepare_checkout(
                    connection, self._flavour, readonly=readonly, direct=self._fast is not None
                )
            except BaseException:
                connection.close()
                raise
        return SqlAlchemyTransaction(
            connection,
            self._flavour,
            readonly=readonly,
            fast=self._fast,
            restore_autocommit=restore,
        )

    @property
    def issues_in_one_statement(self) -> bool:
        """See `UnitOfWork.issues_in_one_statement`: True on PostgreSQL."""
        return self._flavour is Flavour.POSTGRESQL

    def one_write_transaction(self) -> SqlAlchemyTransaction:
        """See `UnitOfWork.one_write_transaction`. On PostgreSQL the read-only checkout (in
        AUTOCOMMIT), where each statement commits by itself: a good link's consume is the
        one data-modifying CTE of `consume_if_accepted`, one round trip where BEGIN, lookup,
        UPDATE, INSERT and COMMIT made five (issue 15); a refused link's adds the lookup
        (and, after a race, `consume_with_audit`'s CTE, whose WHERE re-checks everything the
        lookup decided). Each CTE is atomic by itself. On other dialects a consume and its
        audit entry are two statements: a write transaction."""
        return self.transaction(readonly=self._flavour is Flavour.POSTGRESQL)

    def _bare_transaction(self, fast: FastPath, *, readonly: bool) -> SqlAlchemyTransaction | None:
        """A transaction on the bare pooled connection (no `Connection` object until a Core
        statement needs one), issue 15; None when this checkout needs Core's setup (a
        PostgreSQL connection whose resting isolation level is not yet known to be READ
        COMMITTED: the Core checkout finds out, once per connection)."""
        engine = self._engine
        dialect = engine.dialect
        with self._checkout():
            try:
                pooled = engine.raw_connection()
            except dialect.loaded_dbapi.Error as error:
                # Wrapped as `engine.connect()` wraps it (a lost server stays transient).
                lost = bool(dialect.is_disconnect(error, None, None))
                raise sa_exc.DBAPIError.instance(
                    None,
                    None,
                    error,
                    dialect.loaded_dbapi.Error,
                    hide_parameters=True,
                    connection_invalidated=lost,
                    dialect=dialect,
                ) from error
            restore = False
            try:
                if self._flavour is Flavour.SQLITE:
                    configure_sqlite_once(pooled)
                elif self._flavour is Flavour.POSTGRESQL and readonly:
                    restore = enter_autocommit(pooled)
                elif self._flavour is Flavour.POSTGRESQL and not rests_read_committed(pooled):
                    pooled.close()
                    return None
            except BaseException:
                pooled.close()
                raise
        return SqlAlchemyTransaction(
            pooled,
            self._flavour,
            readonly=readonly,
            fast=fast,
            restore_autocommit=restore,
            engine=engine,
        )

    def _checkout(self) -> _Checkout:
        return self._checkout_errors


__all__ = ["SqlAlchemyTransaction", "SqlAlchemyUnitOfWork"]
