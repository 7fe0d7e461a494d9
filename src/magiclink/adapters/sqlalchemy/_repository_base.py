"""What every SQL repository shares: its transaction's connection, and guarded inserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, CursorResult, Executable, RowMapping

from magiclink.adapters.sqlalchemy._fastpath import FastPath, Source
from magiclink.domain._errors import StorageError

R = TypeVar("R")


class ConnectionSource(Protocol):
    """What a repository needs from its transaction."""

    @property
    def guard_inserts(self) -> bool:
        """True when a failed statement aborts the whole transaction (PostgreSQL): inserts
        that may hit a meaningful unique constraint then run inside a SAVEPOINT."""
        ...

    @property
    def returns_updated_rows(self) -> bool:
        """True when an UPDATE can hand back the rows it changed (UPDATE ... RETURNING) and
        that is the cheaper way: not on SQLite (see `invalidate_by_booking`)."""
        ...

    def connection(self) -> Connection:
        """The transaction's connection, with its database transaction begun."""
        ...


class SqlAlchemyRepository:
    """A repository bound to one transaction.

    With a `FastPath` (given by `SqlAlchemyUnitOfWork` for the drivers it suits), the
    constant statements of `_statements` run pre-compiled on the transaction's DBAPI cursor
    whenever no cursor-level listener is on the engine: the same statements, on the same
    connection and transaction. Anything else goes through Core.
    """

    def __init__(self, source: ConnectionSource, *, fast: FastPath | None = None) -> None:
        self._source = source
        self._fast = fast
        # A SqlAlchemyTransaction may hand out its bare pooled connection.
        self._fast_connection: Callable[[], Source] = getattr(
            source, "fast_connection", source.connection
        )

    def _fast_for(self, statement: Executable) -> FastPath | None:
        """The fast path, if it runs this statement now; else None (Core)."""
        fast = self._fast
        if fast is None:
            return None
        return fast if fast.prepares(statement) and fast.usable() else None

    def _first(
        self, statement: Executable, params: Mapping[str, Any], read: Callable[[RowMapping], R]
    ) -> R | None:
        """The record `read` makes of the statement's first row, or None when it has none."""
        fast = self._fast_for(statement)
        if fast is not None:
            found = fast.first(self._fast_connection(), statement, params)
        else:
            found = self._source.connection().execute(statement, params).mappings().first()
        return None if found is None else read(found)

    def _all(
        self, statement: Executable, params: Mapping[str, Any], read: Callable[[RowMapping], R]
    ) -> list[R]:
        """The records `read` makes of every row of the statement, in its order."""
        fast = self._fast_for(statement)
        if fast is not None:
            rows: Iterable[RowMapping] = fast.all(self._fast_connection(), statement, params)
        else:
            rows = self._source.connection().execute(statement, params).mappings()
        return [read(row) for row in rows]

    def _rowcount(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Run a write; the number of rows it matched."""
        fast = self._fast_for(statement)
        if fast is not None:
            return fast.rowcount(self._fast_connection(), statement, params)
        return int(self._source.connection().execute(statement, params).rowcount)

    def _insert_guarded(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Insert one row and return its id, keeping the transaction usable if it fails.

        On PostgreSQL a failed statement aborts the whole transaction, so the insert runs in a
        SAVEPOINT; SQLite and MariaDB roll back only the failed statement by themselves.
        """
        conn = self._source.connection()
        if not self._source.guard_inserts:
            return new_id(conn.execute(statement, params))
        with conn.begin_nested():
            return new_id(conn.execute(statement, params))


def new_id(result: CursorResult[Any]) -> int:
    """The id an INSERT of one row got (each table's primary key is its one `id` column)."""
    primary_key = result.inserted_primary_key
    if primary_key is None or primary_key[0] is None:
        raise StorageError("Storage error: the database returned no id for a new row")
    return int(primary_key[0])


__all__ = ["ConnectionSource", "SqlAlchemyRepository", "new_id"]
