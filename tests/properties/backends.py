"""The storages the properties run on: in-memory, and SQLite through the SQL adapter.

Each backend hands a test a *factory* of fresh, empty units of work; the test calls it inside
the hypothesis example (never a function-scoped fixture), and the backend disposes of the
engines it made when the example ends.
"""

from __future__ import annotations

import importlib
import importlib.util
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import UnitOfWork

UowFactory = Callable[[], UnitOfWork]


def _sqlalchemy_installed() -> bool:
    """True when SQLAlchemy is installed (the `sqlalchemy` extra; always in dev and CI)."""
    return importlib.util.find_spec("sqlalchemy") is not None


@attrs.frozen
class Backend:
    """A named way to get fresh storages; `session()` yields the factory for one example."""

    name: str
    session: Callable[[], Any]


@contextmanager
def _memory_session() -> Iterator[UowFactory]:
    yield InMemoryUnitOfWork


class _SqliteTemplate:
    """An in-memory SQLite database on which `create_schema` ran once; cloned per storage.

    Cloning with SQLite's backup API costs a fraction of a millisecond, against several for
    `create_schema` (DDL plus the Alembic stamp); the clone is the same database, page for page.
    """

    def __init__(self) -> None:
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def clone(self) -> sqlite3.Connection:
        with self._lock:
            if self._connection is None:
                self._connection = self._build()
            copy = sqlite3.connect(":memory:", check_same_thread=False)
            self._connection.backup(copy)
            return copy

    @staticmethod
    def _build() -> sqlite3.Connection:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        # Imported here, not guarded: with SQLAlchemy installed, a broken adapter must fail.
        adapter = importlib.import_module("magiclink.adapters.sqlalchemy")
        template = sqlite3.connect(":memory:", check_same_thread=False)
        engine = create_engine("sqlite://", creator=lambda: template, poolclass=StaticPool)
        adapter.create_schema(engine)
        return template


_TEMPLATE = _SqliteTemplate()


@contextmanager
def _sqlite_session() -> Iterator[UowFactory]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    adapter = importlib.import_module("magiclink.adapters.sqlalchemy")
    engines: list[Any] = []

    def factory() -> UnitOfWork:
        # A private in-memory database per call (a clone of the schema-only template);
        # StaticPool keeps its single connection for the engine's life.
        connection = _TEMPLATE.clone()
        engine = create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool)
        engines.append(engine)
        uow: UnitOfWork = adapter.SqlAlchemyUnitOfWork(engine)
        return uow

    try:
        yield factory
    finally:
        for engine in engines:
            engine.dispose()


MEMORY = Backend("memory", _memory_session)
SQLITE = Backend("sqlite", _sqlite_session)

BACKENDS = [pytest.param(MEMORY, id="memory")]
if _sqlalchemy_installed():
    BACKENDS.append(pytest.param(SQLITE, id="sqlite"))
else:  # pragma: no cover - an install without the `sqlalchemy` extra
    BACKENDS.append(
        pytest.param(SQLITE, id="sqlite", marks=pytest.mark.skip(reason="SQLAlchemy missing"))
    )
