"""Storage for the link-action tests: every adapter and database (`any_uow`), and a
harness over it."""

from __future__ import annotations

import pytest

from magiclink.ports import UnitOfWork
from tests.databases import any_engine, any_uow, mariadb_engine, postgres_engine, sqlite_engine
from tests.unit.harness import Harness

__all__ = ["any_engine", "any_uow", "mariadb_engine", "postgres_engine", "sqlite_engine"]


@pytest.fixture
def world(any_uow: UnitOfWork) -> Harness:
    """A harness over memory, SQLite, PostgreSQL and MariaDB in turn."""
    return Harness.build(any_uow)
