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
statements was never one snapshot on PostgreSQL. On MariaDB a read-only transaction is the
write one's (its driver would spend a round trip to switch autocommit on and one to switch
it off).

Other dialects run at the engine's own settings.

**The token hot path** (`_fastpath`): with pysqlite and psycopg 3 the token repository's
lookup, consume, insert and batch invalidation, the audit log's one-entry append and SQLite's
`BEGIN IMMEDIATE` run pre-compiled on this transaction's DBAPI connection, inside the same
database transaction; an engine with a cursor-level event listener gets Core for every
statement instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import ClassVar, Generic, Self, TypeVar, overload

from sqlalchemy import Connection, Engine, PoolProxiedConnection
from sqlalchemy import exc as sa_exc

from magiclink.adapters.sqlalchemy._connections import (
    Flavour,
    configure_sqlite_once,
    enter_autocommit,
    leave_autocommit,
    prepare_checkout,
    rests_read_committed,
    sqlite_in_transaction,
)
from magiclink.adapters.sqlalchemy._errors import translate, translate_errors
from magiclink.adapters.sqlalchemy._fast_audit import FastAuditLog
from magiclink.adapters.sqlalchemy._fastpath import FastPath, fast_path_for
from magiclink.adapters.sqlalchemy._repositories import (
    SqlAlchemyAuditLog,
    SqlAlchemyBookingRepository,
    SqlAlchemyGuestRepository,
    SqlAlchemyIncidentRepository,
    SqlAlchemyRatingRepository,
    SqlAlchemyTokenRepository,
)
from magiclink.domain._errors import MagicLinkError, StorageError
from magiclink.ports._unit_of_work import ExcInfo, Transaction, UnitOfWork

R = TypeVar("R")


class _OnFirstUse(Generic[R]):
    """A transaction's repository, made on first access and from then on a plain instance
    attribute (still assignable, as a test's proxy does). `functools.cached_property`
    without its per-access lock (Python 3.11)."""

    __slots__ = ("_make", "_name")

    def __init__(self, make: Callable[[SqlAlchemyTransaction], R]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type[object], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, tx: None, owner: type[object]) -> Self: ...
    @overload
    def __get__(self, tx: SqlAlchemyTransaction, owner: type[object]) -> R: ...
    def __get__(self, tx: SqlAlchemyTransaction | None, owner: type[object]) -> R | Self:
        if tx is None:
            return self
        made = tx.__dict__[self._name] = self._make(tx)
        return made


class SqlAlchemyTransaction(Transaction):
    """One database transaction on one pooled connection, and the repositories bound to it.

    The database transaction begins with the first statement (so an unused transaction costs
    only a pool checkout), and begins again after `commit()` or `rollback()` if the
    repositories are used once more. `close()` rolls back what was not committed and returns
    the connection to the pool; it never raises.
    """

    def __init__(
        self,
        connection: Connection | PoolProxiedConnection,
        flavour: Flavour,
        *,
        readonly: bool,
        fast: FastPath | None = None,
        restore_autocommit: bool = False,
        engine: Engine | None = None,
    ) -> None:
        # A read-only transaction on the fast path starts on the bare pooled connection
        # (`pooled`) and wraps it in a `Connection` only if a Core statement needs one.
        self._connection: Connection | None = None
        self._pooled: PoolProxiedConnection | None = None
        if isinstance(connection, Connection):
            self._connection = connection
        else:
            if engine is None:
                raise ValueError("a bare pooled connection needs its engine")
            self._pooled = connection
        self._engine = engine
        # The unit of work switched this checkout's DBAPI connection to autocommit itself
        # (a read-only transaction on psycopg): `close()` switches it back.
        self._restore_autocommit = restore_autocommit
        self._fast = fast
        self._flavour = flavour
        self._readonly = readonly
        self._begun = False
        # Only PostgreSQL (and, to be safe, unknown dialects) aborts the whole transaction on
        # a failed statement; SQLite and MariaDB roll back just that statement.
        self._guard_inserts = flavour in (Flavour.POSTGRESQL, Flavour.OTHER)

    # The repositories, each made on first use: most operations touch one or two of them.
    guests = _OnFirstUse(SqlAlchemyGuestRepository)
    tokens = _OnFirstUse(lambda tx: SqlAlchemyTokenRepository(tx, fast=tx._fast))
    bookings = _OnFirstUse(SqlAlchemyBookingRepository)
    ratings = _OnFirstUse(SqlAlchemyRatingRepository)
    incidents = _OnFirstUse(SqlAlchemyIncidentRepository)
    audit = _OnFirstUse(
        lambda tx: SqlAlchemyAuditLog(tx) if tx._fast is None else FastAuditLog(tx, tx._fast)
    )

    @property
    def guard_inserts(self) -> bool:
        """True when conflict-prone inserts must run in a SAVEPOINT (see `ConnectionSource`)."""
        return self._guard_inserts

    def connection(self) -> Connection:
        """The open connection, with the database transaction begun.

        Raises:
            StorageError: the transaction is closed, or BEGIN failed (transient when the
                database is locked or unreachable).
        """
        connection = self._connection
        if connection is None:
            connection = self._wrap_pooled()
        if not self._begun:
            with translate_errors():
                try:
                    self._begin(connection)
                except BaseException:
                    # Leave the connection reusable: a later call may try BEGIN again.
                    with contextlib.suppress(Exception):
                        connection.rollback()
                    raise
            self._begun = True
        return connection

    def fast_connection(self) -> Connection | PoolProxiedConnection:
        """What the fast path's statements run on, with the database transaction begun: the
        `Connection` once there is one, else the bare pooled connection (a read-only
        transaction sends no BEGIN of its own; a write one on SQLite sends `BEGIN
        IMMEDIATE` on the cursor, and psycopg begins by itself with the first statement).

        Raises:
            StorageError: the transaction is closed, or BEGIN failed (transient when the
                database is locked or unreachable).
        """
        pooled = self._pooled
        if pooled is None:
            return self.connection()
        if not self._begun:
            fast = self._fast
            if (
                fast is not None
                and not self._readonly
                and self._flavour is Flavour.SQLITE
                and not getattr(pooled.dbapi_connection, "in_transaction", False)
            ):
                with translate_errors():
                    fast.execute_driver_sql(pooled, "BEGIN IMMEDIATE")
            self._begun = True
        return pooled

    def _wrap_pooled(self) -> Connection:
        """The `Connection` over the bare pooled connection, made on first need."""
        pooled, engine = self._pooled, self._engine
        if pooled is None or engine is None:
            raise StorageError("Transaction is closed")
        with translate_errors():
            connection = Connection(engine, connection=pooled)
        self._connection, self._pooled = connection, None
        # Whatever pysqlite or psycopg began on the bare connection is this one's now.
        self._begun = False
        return connection

    def _begin(self, connection: Connection) -> None:
        connection.begin()
        if self._flavour is Flavour.SQLITE:
            # A host's "begin" event hook, or sqlite3's autocommit=False mode, may already
            # have opened a (deferred) transaction: then it is the one we use. A read-only
            # transaction opens none of its own (module docstring).
            if not self._readonly and not sqlite_in_transaction(connection):
                fast = self._fast
                if fast is not None and fast.usable():
                    fast.execute_driver_sql(connection, "BEGIN IMMEDIATE")
                else:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif self._flavour is Flavour.MYSQL:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def commit(self) -> None:
        """Commit what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the database refused the commit.
        """
        self._end(commit=True)

    def rollback(self) -> None:
        """Discard what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the rollback failed.
        """
        self._end(commit=False)

    def _end(self, *, commit: bool) -> None:
        """End the database transaction begun, if any, on whichever connection holds it.
        A Core commit that fails leaves the transaction begun (the caller rolls it back)."""
        connection, pooled = self._connection, self._pooled
        if connection is None and pooled is None:
            raise StorageError("Transaction is closed")
        if not self._begun:
            return
        if commit and connection is not None:
            with translate_errors():
                connection.commit()
            self._begun = False
            return
        self._begun = False
        with translate_errors():
            if connection is not None:
                self._rollback(connection)
            elif pooled is not None and self._fast is not None:
                self._fast.end(pooled, commit=commit)

    def _rollback(self, connection: Connection) -> None:
        if self._flavour is Flavour.SQLITE and sqlite_in_transaction(connection):
            # Explicit, because SQLAlchemy skips the DBAPI rollback when the host's engine
            # runs in AUTOCOMMIT mode and was built with skip_autocommit_rollback=True.
            connection.exec_driver_sql("ROLLBACK")
        connection.rollback()

    def close(self) -> None:
        """Roll back anything not committed and return the connection to the pool.

        Idempotent, and never raises a storage error: if the rollback fails the connection
        is broken, and the database discards the transaction together with it. A
        `BaseException` such as `asyncio.CancelledError` arriving during the rollback
        propagates after the connection went back to the pool (which resets it).
        """
        connection = self._connection
        if connection is None:
            self._close_pooled()
            return
        self._connection = None
        if self._restore_autocommit:
            leave_autocommit(connection)
        try:
            # Whenever a connection was checked out, not only after a completed BEGIN: an
            # asyncio task cancelled while BEGIN IMMEDIATE was in flight leaves the SQLite
            # write lock taken although `_begun` is still False (SQLAlchemy's own rollback is
            # a no-op when it began nothing).
            self._begun = False
            self._rollback(connection)
        except Exception as error:
            if translate(error) is None:
                raise
        finally:
            try:
                connection.close()
            except Exception as error:
                if translate(error) is None:
                    raise

    def _close_pooled(self) -> None:
        """`close()` of a transaction still on its bare pooled connection."""
        pooled = self._pooled
        if pooled is None:
            return
        self._pooled = None
        self._begun = False
        if self._restore_autocommit:
            leave_autocommit(pooled)
        try:
            # Read-only: psycopg ran in autocommit, and pysqlite began nothing unless a
            # write slipped in (then it is discarded here, as the pool's reset would). A
            # write transaction is rolled back whatever the pool's reset-on-return says (a
            # rollback with nothing begun costs no round trip on either driver).
            if not self._readonly or getattr(pooled.dbapi_connection, "in_transaction", False):
                pooled.rollback()
        except Exception as error:
            if translate(error) is None:
                raise
        finally:
            try:
                pooled.close()  # back to the pool, which resets it
            except Exception as error:
                if translate(error) is None:
                    raise


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
