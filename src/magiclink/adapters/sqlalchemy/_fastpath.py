"""The SQL hot path on the pooled DBAPI cursor, with SQL compiled once per engine (issue 15).

A verify is one indexed SELECT and a consume one conditional UPDATE; on SQLite the Core
`Connection.execute` around each (compiled-cache lookup, execution context, result
metadata, row objects) cost several times the driver's own call. So, for the drivers where
the profile showed it (pysqlite and psycopg 3, both synchronous), every constant statement
of `_statements` and `_combined` that a repository runs (and the one-row token and audit
INSERTs of `STATEMENTS`) is compiled once, on first use, with the engine's own dialect, into
the SQL string, parameter order and type processors SQLAlchemy itself would send
(`_prepared`), and runs with `cursor.execute(sql, params)` on the DBAPI connection of its transaction: the same
connection, inside the same database transaction (or, read-only, the same absence of one),
so atomicity, isolation and the unit of work's commit are unchanged. A statement built at
run time is never cached here: it goes through Core.

Rows are read by column name, never by position: the names of the result's columns (psycopg:
the result's field names, which cost less than building `cursor.description`; other
drivers: `cursor.description`) are matched to the statement's labels, each value through the
result processor of its labelled column, into the mapping `_rows` reads records from. The
statement's SQL is fixed, so its result columns are too: they are matched once, on its first
result, and every later row of the same width reuses that layout.

Nothing is given up silently:
* an engine with a `before_cursor_execute`, `after_cursor_execute` or `handle_error`
  listener (tracing, statement counting, a host's error hook) takes the Core path for as long
  as the listener is there: every statement stays visible to it;
* an engine with a `schema_translate_map`, another driver, or an async driver takes the Core
  path always;
* a driver exception is wrapped as SQLAlchemy wraps it (`DBAPIError.instance`, parameters
  hidden), and a disconnect invalidates the connection first, so `_errors.translate` sees
  the same exception and classifies it alike (a lost connection stays transient, retried
  once, R9.4) and the pool discards the dead connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Connection, Engine, Executable, PoolProxiedConnection, RowMapping, insert
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.expression import Select, UpdateBase

from magiclink.adapters.sqlalchemy import _combined as combined
from magiclink.adapters.sqlalchemy import _statements as sql
from magiclink.adapters.sqlalchemy._prepared import (
    Factory,
    PreparedStatement,
    description_names,
    psycopg_names,
)
from magiclink.adapters.sqlalchemy._tables import audit_log, tokens

FAST_DRIVERS: Final = frozenset({"pysqlite", "psycopg"})
"""Drivers whose token statements run on the DBAPI cursor (by profile: see the module doc)."""


R = TypeVar("R")
Source = Connection | PoolProxiedConnection
"""What a statement runs on: a transaction's `Connection`, or its bare pooled connection."""

# Every connection-level event: with none listened to, a read-only transaction may run on
# the bare pooled connection (no `Connection` object), since no hook would miss anything.
_CONNECTION_EVENTS: Final = (
    "engine_connect",
    "begin",
    "commit",
    "rollback",
    "before_execute",
    "after_execute",
    "before_cursor_execute",
    "after_cursor_execute",
    "set_connection_execution_options",
)


def _dbapi(connection: Source) -> Any:
    if isinstance(connection, Connection):
        return connection.connection.dbapi_connection
    return connection.dbapi_connection


_Builder = Callable[[Dialect], tuple[Select[Any] | UpdateBase, Mapping[str, Any], list[str] | None]]

_TOKEN_COLUMNS: Final = [
    "token_hash",
    "guest_id",
    "booking_id",
    "booking_revision",
    "expires_at",
    "used_at",
    "invalidated",
    "invalidation_reason",
    "created_at",
    "link_generation",
]
_AUDIT_COLUMNS: Final = [
    "guest_id",
    "endpoint",
    "action",
    "resource_id",
    "success",
    "metadata",
    "created_at",
    "operation_id",
]


def _returns_id(dialect: Dialect) -> bool:
    """True when a new row's id comes back by RETURNING (else `cursor.lastrowid`)."""
    return bool(dialect.insert_returning) and dialect.name != "sqlite"


def _insert_token(dialect: Dialect) -> UpdateBase:
    statement = insert(tokens)
    return statement.returning(tokens.c.id) if _returns_id(dialect) else statement.inline()


# The fast path's own statements, which are not constants of `_statements` (an INSERT of
# one row whose form depends on the dialect), with their per-call parameters (sample values)
# and the columns they set. Built and compiled on first use.
STATEMENTS: Final[dict[str, _Builder]] = {
    "insert_token": lambda d: (_insert_token(d), dict.fromkeys(_TOKEN_COLUMNS), _TOKEN_COLUMNS),
    "insert_audit": lambda d: (
        insert(audit_log).inline(),
        dict.fromkeys(_AUDIT_COLUMNS),
        _AUDIT_COLUMNS,
    ),
}


Key = str | Executable
"""A fast-path statement: a name in `STATEMENTS`, or a constant of `_statements` or `_combined`."""

# The constants of `_statements` and `_combined` (module-level, so their ids are stable for
# the process).
_CONSTANTS: Final = frozenset(
    id(value)
    for module in (sql, combined)
    for value in (getattr(module, name) for name in module.__all__)
    if isinstance(value, Select | UpdateBase)
)


class FastPath:
    """The pre-compiled token statements of one engine, run on its DBAPI cursors.

    Each statement is compiled on first use, when a connection has been checked out: by then
    the dialect has read the server's version, as it has when Core compiles.
    """

    __slots__ = (
        "_dialect",
        "_dialect_events",
        "_engine",
        "_events",
        "_names",
        "_prepared",
        "_returns_id",
    )

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect
        self._events = engine.dispatch
        self._dialect_events = engine.dialect.dispatch
        self._names = psycopg_names if self._dialect.driver == "psycopg" else description_names
        self._prepared: dict[str | int, PreparedStatement] = {}
        self._returns_id = _returns_id(self._dialect)

    def _never_listened(self) -> bool:
        # SQLAlchemy's own flags, set by the first listener ever attached to the engine (or
        # to the Engine class) and to its dialect: the cheap answer for most engines, where
        # the exact check below costs a few µs per call.
        return not (
            getattr(self._engine, "_has_events", True)
            or getattr(self._dialect, "_has_events", True)
        )

    def usable(self) -> bool:
        """False while a cursor-level listener is on the engine (it must see every statement)."""
        if self._never_listened():
            return True
        events = self._events
        return not (
            events.before_cursor_execute
            or events.after_cursor_execute
            or self._dialect_events.handle_error
        )

    def bare(self) -> bool:
        """True while no connection-level listener is on the engine at all (see `usable`)."""
        if self._never_listened():
            return True
        events = self._events
        return not self._dialect_events.handle_error and not any(
            getattr(events, name) for name in _CONNECTION_EVENTS
        )

    def first(self, connection: Source, key: Key, values: Mapping[str, Any]) -> RowMapping | None:
        """Run statement `key`; its first row by label, or None."""
        statement = self._statement(key, values)
        cursor = self._execute(connection, statement, values)
        try:
            row = cursor.fetchone()
            return None if row is None else statement.mapping(lambda: self._names(cursor), row)
        finally:
            cursor.close()

    def record(
        self, connection: Source, key: Key, values: Mapping[str, Any], factory: Factory[R]
    ) -> R | None:
        """Run statement `key`; the record `factory`'s reader makes of its first row, or None."""
        statement = self._statement(key, values)
        cursor = self._execute(connection, statement, values)
        try:
            row = cursor.fetchone()
            if row is None:
                return None
            return statement.record(lambda: self._names(cursor), row, factory)
        finally:
            cursor.close()

    def all(self, connection: Source, key: Key, values: Mapping[str, Any]) -> list[RowMapping]:
        """Run statement `key`; every row, by label."""
        statement = self._statement(key, values)
        cursor = self._execute(connection, statement, values)
        try:
            rows = cursor.fetchall()
            if not rows:
                return []

            def names() -> tuple[Any, ...]:
                return self._names(cursor)

            return [statement.mapping(names, row) for row in rows]
        finally:
            cursor.close()

    def rowcount(self, connection: Source, key: Key, values: Mapping[str, Any]) -> int:
        """Run write `key`; the number of rows it matched."""
        cursor = self._execute(connection, self._statement(key, values), values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert(self, connection: Source, key: str, values: Mapping[str, Any]) -> int | None:
        """Run INSERT `key` of one row; the row's new id (None if the driver gave none)."""
        cursor = self._execute(connection, self._statement(key, values), values)
        try:
            if not self._returns_id:
                return cast(int | None, cursor.lastrowid)
            row = cursor.fetchone()
            return None if row is None else cast(int | None, row[0])  # RETURNING id only
        finally:
            cursor.close()

    def execute_driver_sql(self, connection: Source, statement: str) -> None:
        """Run a parameterless statement (SQLite's `BEGIN IMMEDIATE`) on the DBAPI cursor."""
        dbapi_connection = _dbapi(connection)
        if dbapi_connection is None:
            raise sa_exc.ResourceClosedError("The connection was invalidated")
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        except Exception as error:
            wrapped = self._wrapped(error, connection, dbapi_connection, cursor)
            if wrapped is None:
                raise
            raise wrapped from error
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def end(self, connection: Source, *, commit: bool) -> None:
        """Commit or roll back the DBAPI transaction of a bare pooled connection, a driver
        error wrapped (and a dead connection invalidated) as Core would."""
        dbapi_connection = _dbapi(connection)
        if dbapi_connection is None:
            raise sa_exc.ResourceClosedError("The connection was invalidated")
        try:
            if commit:
                dbapi_connection.commit()
            else:
                dbapi_connection.rollback()
        except Exception as error:
            wrapped = self._wrapped(error, connection, dbapi_connection, None)
            if wrapped is None:
                raise
            raise wrapped from error

    def prepares(self, statement: Executable) -> bool:
        """True when `statement` is one of the constants of `_statements` or `_combined`,
        which the fast path runs too (compiled on first use, like the `STATEMENTS` it names)."""
        return id(statement) in _CONSTANTS

    def _statement(self, key: Key, values: Mapping[str, Any]) -> PreparedStatement:
        if not isinstance(key, str):
            return self._constant(key, values)
        prepared = self._prepared.get(key)
        if prepared is None:
            statement, sample, column_keys = STATEMENTS[key](self._dialect)
            prepared = PreparedStatement(statement, self._dialect, sample, column_keys=column_keys)
            self._prepared[key] = prepared
        return prepared

    def _constant(self, statement: Executable, values: Mapping[str, Any]) -> PreparedStatement:
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            if id(statement) not in _CONSTANTS:
                raise ValueError("the fast path runs only the constants of _statements")
            sample = dict.fromkeys(values)
            constant = cast(Select[Any] | UpdateBase, statement)
            prepared = self._prepared[id(statement)] = PreparedStatement(
                constant, self._dialect, sample
            )
        return prepared

    def _execute(
        self, connection: Source, statement: PreparedStatement, values: Mapping[str, Any]
    ) -> Any:
        dbapi_connection = _dbapi(connection)
        if dbapi_connection is None:  # invalidated: let Core raise what it raises
            raise sa_exc.ResourceClosedError("The connection was invalidated")
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement.sql, statement.parameters(values))
        except Exception as error:
            with contextlib.suppress(Exception):
                cursor.close()
            wrapped = self._wrapped(error, connection, dbapi_connection, cursor)
            if wrapped is None:
                raise
            raise wrapped from error
        return cursor

    def _wrapped(
        self, error: Exception, connection: Source, dbapi_connection: Any, cursor: Any
    ) -> sa_exc.StatementError | None:
        """The exception Core would raise for a driver's `error` (after invalidating a dead
        connection); None for any other exception, which propagates as it is."""
        dialect = self._dialect
        base = dialect.loaded_dbapi.Error
        if not isinstance(error, base):
            return None
        disconnect = bool(dialect.is_disconnect(error, dbapi_connection, cursor))
        if disconnect:
            with contextlib.suppress(Exception):
                connection.invalidate(error)
        return sa_exc.DBAPIError.instance(
            None,
            None,
            error,
            base,
            hide_parameters=True,
            connection_invalidated=disconnect,
            dialect=dialect,
        )


def fast_path_for(engine: Engine) -> FastPath | None:
    """The engine's fast path, or None when its statements must go through Core."""
    dialect = engine.dialect
    if dialect.driver not in FAST_DRIVERS or dialect.is_async:
        return None
    if engine.get_execution_options().get("schema_translate_map"):
        return None
    return FastPath(engine)


__all__ = ["FAST_DRIVERS", "STATEMENTS", "FastPath", "PreparedStatement", "fast_path_for"]
