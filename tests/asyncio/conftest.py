"""Async targets over the databases of tests/databases.py (see tests/asyncio/targets.py)."""

from __future__ import annotations

import asyncio
import functools

import pytest
from sqlalchemy.util import greenlet_spawn

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "in_bridge: run the test body inside the greenlet bridge")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `in_bridge` tests inside `greenlet_spawn` on a fresh loop; dispose of the async
    engine of their `uow` in that loop."""
    if pyfuncitem.get_closest_marker("in_bridge") is None:
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    uow = arguments.get("uow")
    engine = getattr(uow, "engine", None)

    async def main() -> None:
        try:
            await greenlet_spawn(functools.partial(pyfuncitem.obj, **arguments))
        finally:
            if engine is not None:
                # The async engine's sync view: its pool closes the driver's connections
                # through the bridge, in the loop they belong to.
                await greenlet_spawn(engine.dispose)

    asyncio.run(main())
    return True
