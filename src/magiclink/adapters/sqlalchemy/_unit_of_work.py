"""The SQLAlchemy unit of work: one pooled connection and one database transaction per
`transaction()`.

What it does to the host's engine — nothing global: no event listener, no engine option. Each
transaction checks out one connection from the engine's pool, sets only what it must on that
connection (SQLAlchemy reverts per-connection options when the connection goes back to the
pool), and returns it on `close()`.

* **SQLite.** pysqlite's own transaction handling (a deferred BEGIN issued lazily before the
  first INSERT/UPDATE/DELETE) lets two writers deadlock on a lock upgrade. So the unit of work
  sends `BEGIN IMMEDIATE` itself before the first statement of a write transaction (taking
  the write lock up front, waiting up to the busy timeout). pysqlite adds its implicit BEGIN
  only when no transaction is open, so with ours always first it never does; its `commit()`
  and `rollback()` end our transaction. The connection's isolation level is left as it is:
  switching it to AUTOCOMMIT for each transaction would make SQLAlchemy revert it on the way
  back to the pool with `PRAGMA read_uncommitted = 0`, which expires every prepared
  statement of the connection (each statement of the next transaction would be compiled by
  SQLite again). Once per pooled DBAPI connection it also enables `PRAGMA foreign_keys` and,
  if the connection has no busy timeout at all, sets one of 5 seconds; both stay set on that
  connection.
* **PostgreSQL.** The transaction runs at READ COMMITTED (the server default), so that after
  losing a unique race a transaction reads the winner's row, and a conditional UPDATE
  re-checks a row a racer just changed. The level a pooled connection rests at is read once
  per DBAPI connection; it is set for the transaction only when that level is another one,
  when the host's engine or connection asks for another one, or in autocommit mode.
* **MariaDB/MySQL.** The same READ COMMITTED, set for each transaction by a
  `SET TRANSACTION ISOLATION LEVEL READ COMMITTED` that applies to that transaction only.

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
import enum
from typing import Any, ClassVar, Final

from sqlalchemy import Connection, Engine, PoolProxiedConnection
from sqlalchemy import exc as sa_exc

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
from magiclink.domain._errors import StorageError
from magiclink.ports._unit_of_work import Transaction, UnitOfWork

SQLITE_DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
_SQLITE_CONFIGURED: Final = "magiclink_sqlite_configured"
_PG_RESTING_LEVEL: Final = "magiclink_postgresql_resting_isolation_level"
_READ_COMMITTED: Final = "READ COMMITTED"
_AUTOCOMMIT: Final = "AUTOCOMMIT"


class _Flavour(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    OTHER = "other"

    @classmethod
    def of(cls, engine: Engine) -> _Flavour:
        name = engine.dialect.name
        if name == "mariadb":
            return cls.MYSQL
        try:
            return cls(name)
        except ValueError:
            return cls.OTHER


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
        flavour: _Flavour,
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
        self._guard_inserts = flavour in (_Flavour.POSTGRESQL, _Flavour.OTHER)
        self.guests = SqlAlchemyGuestRepository(self)
        self.tokens = SqlAlchemyTokenRepository(self, fast=fast)
        self.bookings = SqlAlchemyBookingRepository(self)
        self.ratings = SqlAlchemyRatingRepository(self)
        self.incidents = SqlAlchemyIncidentRepository(self)
        self.audit = SqlAlchemyAuditLog(self) if fast is None else FastAuditLog(self, fast)

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
        `Connection` once there is one, else the bare pooled connection of a read-only
        transaction (which sends no BEGIN of its own).

        Raises:
            StorageError: the transaction is closed, or BEGIN failed.
        """
        pooled = self._pooled
        if pooled is None:
            return self.connection()
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
        if self._flavour is _Flavour.SQLITE:
            # A host's "begin" event hook, or sqlite3's autocommit=False mode, may already
            # have opened a (deferred) transaction: then it is the one we use. A read-only
            # transaction opens none of its own (module docstring).
            if not self._readonly and not _sqlite_in_transaction(connection):
                fast = self._fast
                if fast is not None and fast.usable():
                    fast.execute_driver_sql(connection, "BEGIN IMMEDIATE")
                else:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif self._flavour is _Flavour.MYSQL:
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def commit(self) -> None:
        """Commit what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the database refused the commit.
        """
        connection = self._connection
        if connection is None:
            pooled = self._pooled
            if pooled is None:
                raise StorageError("Transaction is closed")
            if self._begun:
                self._begun = False
                with translate_errors():
                    pooled.commit()
            return
        if not self._begun:
            return
        with translate_errors():
            connection.commit()
        self._begun = False

    def rollback(self) -> None:
        """Discard what the repositories did since the transaction (or last commit) began.

        Raises:
            StorageError: the transaction is closed, or the rollback failed.
        """
        connection = self._connection
        if connection is None:
            pooled = self._pooled
            if pooled is None:
                raise StorageError("Transaction is closed")
            if self._begun:
                self._begun = False
                with translate_errors():
                    pooled.rollback()
            return
        if not self._begun:
            return
        self._begun = False
        with translate_errors():
            self._rollback(connection)

    def _rollback(self, connection: Connection) -> None:
        if self._flavour is _Flavour.SQLITE and _sqlite_in_transaction(connection):
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
            _leave_autocommit(connection)
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
            _leave_autocommit(pooled)
        try:
            # Read-only: psycopg ran in autocommit, and pysqlite began nothing unless a
            # write slipped in (then it is discarded here, as the pool's reset would).
            if getattr(pooled.dbapi_connection, "in_transaction", False):
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
        self._flavour = _Flavour.of(engine)
        # The token hot path's statements, compiled once for this engine (`_fastpath`).
        self._fast = fast_path_for(engine)

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
        if (
            readonly
            and fast is not None
            and fast.bare()
            and not self._engine.get_execution_options()
        ):
            return self._bare_transaction(fast)
        try:
            with translate_errors():
                connection = self._engine.connect()
                try:
                    restore = self._prepare(connection, readonly=readonly)
                except BaseException:
                    connection.close()
                    raise
        except StorageError as error:
            if isinstance(error.__cause__, self.programming_errors):
                # An async engine used outside the greenlet bridge: the caller's bug, not an
                # outage; the first checkout is where it always shows.
                raise error.__cause__ from None
            raise
        return SqlAlchemyTransaction(
            connection,
            self._flavour,
            readonly=readonly,
            fast=self._fast,
            restore_autocommit=restore,
        )

    def _bare_transaction(self, fast: FastPath) -> SqlAlchemyTransaction:
        """A read-only transaction on the bare pooled connection (no `Connection` object
        until a Core statement needs one): the fast path's verification, issue 15."""
        engine = self._engine
        dialect = engine.dialect
        try:
            with translate_errors():
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
                    if self._flavour is _Flavour.SQLITE:
                        _configure_sqlite_once(pooled)
                    elif self._flavour is _Flavour.POSTGRESQL:
                        restore = _enter_autocommit(pooled)
                except BaseException:
                    pooled.close()
                    raise
        except StorageError as error:
            if isinstance(error.__cause__, self.programming_errors):
                raise error.__cause__ from None
            raise
        return SqlAlchemyTransaction(
            pooled,
            self._flavour,
            readonly=True,
            fast=fast,
            restore_autocommit=restore,
            engine=engine,
        )

    def _prepare(self, connection: Connection, *, readonly: bool) -> bool:
        """Set up a fresh checkout; True when `close()` must leave autocommit mode again."""
        if self._flavour is _Flavour.SQLITE:
            _configure_sqlite_once(connection.connection)
        elif self._flavour is _Flavour.POSTGRESQL:
            if not readonly:
                _ensure_read_committed(connection)
            elif self._fast is not None and not connection.get_execution_options():
                # psycopg: the same autocommit switch SQLAlchemy's AUTOCOMMIT level makes,
                # without its per-checkout characteristic bookkeeping (issue 15's profile).
                return _enter_autocommit(connection.connection)
            else:
                connection.execution_options(isolation_level=_AUTOCOMMIT)
        return False


def _dbapi_connection(connection: Connection) -> Any:
    return connection.connection.dbapi_connection


def _enter_autocommit(pooled: PoolProxiedConnection) -> bool:
    """Switch a psycopg connection to autocommit; True if it was not (then `close()` must
    switch it back)."""
    dbapi_connection: Any = pooled.dbapi_connection
    if dbapi_connection.autocommit:
        return False
    dbapi_connection.autocommit = True
    return True


def _leave_autocommit(connection: Connection | PoolProxiedConnection) -> None:
    """Switch a psycopg connection back out of autocommit before it returns to the pool; a
    connection that refuses is broken, and is invalidated (the pool then discards it)."""
    try:
        pooled = connection.connection if isinstance(connection, Connection) else connection
        dbapi_connection: Any = pooled.dbapi_connection
        if dbapi_connection is not None:
            dbapi_connection.autocommit = False
    except Exception as error:
        with contextlib.suppress(Exception):
            connection.invalidate(error)


def _sqlite_in_transaction(connection: Connection) -> bool:
    return bool(getattr(_dbapi_connection(connection), "in_transaction", False))


def _ensure_read_committed(connection: Connection) -> None:
    """Make the connection's next transaction run at READ COMMITTED, setting nothing when it
    already would (PostgreSQL).

    SQLAlchemy puts every connection back to its engine's level when it returns to the pool,
    so the level a pooled connection rests at is read once per DBAPI connection (one round
    trip, `get_isolation_level()`) and remembered in the pool's per-connection `info`. The
    level is set for this checkout (and reverted by SQLAlchemy on return) only when
    * that resting level is another one (the server's or role's default, or the engine's
      `isolation_level`);
    * this checkout asked for another level: `execution_options(isolation_level=...)` on the
      host's engine or connection, already applied when the connection was handed over;
    * the DBAPI connection is in autocommit mode (an engine built with
      `isolation_level="AUTOCOMMIT"`), which `get_isolation_level()` does not report.
    """
    info = connection.connection.info
    resting = info.get(_PG_RESTING_LEVEL)
    if resting is None:
        resting = info[_PG_RESTING_LEVEL] = connection.get_isolation_level()
    requested = connection.get_execution_options().get("isolation_level")
    if (
        resting != _READ_COMMITTED
        or requested not in (None, _READ_COMMITTED)
        or getattr(_dbapi_connection(connection), "autocommit", False)
    ):
        connection.execution_options(isolation_level=_READ_COMMITTED)


def _configure_sqlite_once(pooled: PoolProxiedConnection) -> None:
    """Enable foreign keys, and a busy timeout if the connection has none, once per DBAPI
    connection (pysqlite already sets the `timeout` connect argument, 5 s by default, as the
    busy timeout: a host's explicit choice is kept).

    Done on the raw DBAPI cursor, outside any transaction (`PRAGMA foreign_keys` is ignored
    inside one); the pool's per-connection `info` remembers it was done.
    """
    info = pooled.info
    if info.get(_SQLITE_CONFIGURED):
        return
    dbapi_connection: Any = pooled.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout")
        row = cursor.fetchone()
        if row is None or int(row[0]) == 0:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_DEFAULT_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()
    info[_SQLITE_CONFIGURED] = True


__all__ = ["SqlAlchemyTransaction", "SqlAlchemyUnitOfWork"]
