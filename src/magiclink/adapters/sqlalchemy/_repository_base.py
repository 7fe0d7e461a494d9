"""What every SQL repository shares: its transaction's connection, and guarded inserts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, CursorResult, Executable, RowMapping

from magiclink.domain._errors import StorageError

R = TypeVar("R")


class ConnectionSource(Protocol):
    """What a repository needs from its transaction."""

    @property
    def guard_inserts(self) -> bool:
        """True when a failed statement aborts the whole transaction (PostgreSQL): inserts
        that may hit a meaningful unique constraint then run inside a SAVEPOINT."""
        ...

    def connection(self) -> Connection:
        """The transaction's connection, with its database transaction begun."""
        ...


class SqlAlchemyRepository:
    """A repository bound to one transaction."""

    def __init__(self, source: ConnectionSource) -> None:
        self._source = source

    def _first(
        self, statement: Executable, params: Mapping[str, Any], read: Callable[[RowMapping], R]
    ) -> R | None:
        """The record `read` makes of the statement's first row, or None when it has none."""
        row = self._source.connection().execute(statement, params).mappings().first()
        return None if row is None else read(row)

    def _all(
        self, statement: Executable, params: Mapping[str, Any], read: Callable[[RowMapping], R]
    ) -> list[R]:
        """The records `read` makes of every row of the statement, in its order."""
        return [
            read(row) for row in self._source.connection().execute(statement, params).mappings()
        ]

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
