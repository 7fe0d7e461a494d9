"""The per-checkout connection setup of the SQLAlchemy unit of work, by dialect.

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
"""

from __future__ import annotations

import contextlib
import enum
from typing import Any, Final

from sqlalchemy import Connection, Engine, PoolProxiedConnection

SQLITE_DEFAULT_BUSY_TIMEOUT_MS: Final = 5000
_SQLITE_CONFIGURED: Final = "magiclink_sqlite_configured"
_PG_RESTING_LEVEL: Final = "magiclink_postgresql_resting_isolation_level"
_READ_COMMITTED: Final = "READ COMMITTED"
AUTOCOMMIT: Final = "AUTOCOMMIT"


class Flavour(enum.Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"
    OTHER = "other"

    @classmethod
    def of(cls, engine: Engine) -> Flavour:
        name = engine.dialect.name
        if name == "mariadb":
            return cls.MYSQL
        try:
            return cls(name)
        except ValueError:
            return cls.OTHER


def dbapi_of(connection: Connection) -> Any:
    return connection.connection.dbapi_connection


def enter_autocommit(pooled: PoolProxiedConnection) -> bool:
    """Switch a psycopg connection to autocommit; True if it was not (then `close()` must
    switch it back)."""
    dbapi_connection: Any = pooled.dbapi_connection
    if dbapi_connection.autocommit:
        return False
    dbapi_connection.autocommit = True
    return True


def leave_autocommit(connection: Connection | PoolProxiedConnection) -> None:
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


def sqlite_in_transaction(connection: Connection) -> bool:
    return bool(getattr(dbapi_of(connection), "in_transaction", False))


def ensure_read_committed(connection: Connection) -> None:
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
        or getattr(dbapi_of(connection), "autocommit", False)
    ):
        connection.execution_options(isolation_level=_READ_COMMITTED)


def rests_read_committed(pooled: PoolProxiedConnection) -> bool:
    """True when a PostgreSQL connection is known to rest at READ COMMITTED, outside
    autocommit: its write transaction then needs no setup (see `ensure_read_committed`,
    which records the resting level on a connection's first Core checkout)."""
    dbapi_connection: Any = pooled.dbapi_connection
    return pooled.info.get(_PG_RESTING_LEVEL) == _READ_COMMITTED and not getattr(
        dbapi_connection, "autocommit", False
    )


def configure_sqlite_once(pooled: PoolProxiedConnection) -> None:
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


def prepare_checkout(
    connection: Connection, flavour: Flavour, *, readonly: bool, direct: bool
) -> bool:
    """Set up a fresh checkout; True when `close()` must leave autocommit mode again.

    `direct`: the driver is one whose autocommit switch the unit of work flips itself
    (psycopg on the fast path), without SQLAlchemy's per-checkout characteristic
    bookkeeping (issue 15's profile)."""
    if flavour is Flavour.SQLITE:
        configure_sqlite_once(connection.connection)
    elif flavour is Flavour.POSTGRESQL:
        if not readonly:
            ensure_read_committed(connection)
        elif direct and not connection.get_execution_options():
            return enter_autocommit(connection.connection)
        else:
            connection.execution_options(isolation_level=AUTOCOMMIT)
    return False


__all__ = [
    "AUTOCOMMIT",
    "SQLITE_DEFAULT_BUSY_TIMEOUT_MS",
    "Flavour",
    "configure_sqlite_once",
    "dbapi_of",
    "ensure_read_committed",
    "enter_autocommit",
    "leave_autocommit",
    "prepare_checkout",
    "rests_read_committed",
    "sqlite_in_transaction",
]
