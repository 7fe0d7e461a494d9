"""Storage for the hardening tests (§9): the in-memory adapter and SQLite.

The database fixtures come from `tests.databases`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from tests.databases import sqlite_engine

__all__ = ["sqlite_engine"]


@pytest.fixture(params=["memory", "sqlite"])
def uow(request: pytest.FixtureRequest) -> UnitOfWork:
    """A fresh, empty unit of work on each storage."""
    if request.param == "memory":
        return InMemoryUnitOfWork()
    engine: Engine = request.getfixturevalue("sqlite_engine")
    return SqlAlchemyUnitOfWork(engine)
