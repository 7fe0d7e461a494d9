"""Storage for the guest-path tests (§9.4, §9.5, §9.7): in-memory and SQLite for behaviour,
SQLite and PostgreSQL (and MariaDB where SQL is new) for statement counts.

The database fixtures come from `tests.databases`: each gives a clean schema, skips when its
server is missing, and fails instead under `CI=true`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from tests.databases import any_engine, postgres_engine, sqlite_engine

__all__ = ["any_engine", "postgres_engine", "sqlite_engine"]


@pytest.fixture(params=["memory", "sqlite"])
def uow(request: pytest.FixtureRequest) -> UnitOfWork:
    """A fresh, empty unit of work on each storage the features must behave alike on."""
    if request.param == "memory":
        return InMemoryUnitOfWork()
    engine: Engine = request.getfixturevalue("sqlite_engine")
    return SqlAlchemyUnitOfWork(engine)
