"""Async targets over the databases of tests/databases.py (see tests/asyncio/targets.py)."""

from __future__ import annotations

import pytest

from tests.asyncio.targets import (
    AsyncTarget,
    aiosqlite_target,
    asyncpg_target,
    psycopg_async_target,
)
from tests.databases import postgres_engine, sqlite_engine  # noqa: F401

_FACTORIES = {
    "aiosqlite": ("sqlite_engine", aiosqlite_target),
    "asyncpg": ("postgres_engine", asyncpg_target),
    "psycopg_async": ("postgres_engine", psycopg_async_target),
}


@pytest.fixture(
    params=[
        pytest.param("aiosqlite", id="aiosqlite"),
        pytest.param("asyncpg", id="asyncpg", marks=pytest.mark.postgres),
        pytest.param("psycopg_async", id="psycopg_async", marks=pytest.mark.postgres),
    ]
)
def async_target(request: pytest.FixtureRequest) -> AsyncTarget:
    """Each async driver in turn, on empty magiclink tables (PostgreSQL ones skip or, under
    CI=true, fail without a server)."""
    fixture, make = _FACTORIES[request.param]
    return make(request.getfixturevalue(fixture))
