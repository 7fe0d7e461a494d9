"""SPEC §10: the properties P1-P9 of SPEC §6 hold through the async services, on aiosqlite
and on PostgreSQL through asyncpg.

The checks are `magiclink.testing.properties`' own, unchanged: the world they build is wired
over `build_async_services` (tests/asyncio/facade.py), and storage is created inside each
example.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import Engine
from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from magiclink.adapters.sqlalchemy import metadata
from magiclink.asyncio import AsyncSqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing.properties import PROPERTIES
from tests.asyncio.facade import run_in_bridge, through_async_services
from tests.asyncio.targets import asyncpg_target, run_loop
from tests.databases import reset_schema

EXAMPLES = 20
NUMBERS = [f"P{n}" for n in range(1, 10)]


@contextlib.asynccontextmanager
async def _aiosqlite(_: pytest.FixtureRequest) -> AsyncIterator[Callable[[], UnitOfWork]]:
    engines: list[AsyncEngine] = []

    def factory() -> UnitOfWork:
        # Called inside the bridge: the DDL itself goes through aiosqlite.
        engine = create_async_engine("sqlite+aiosqlite://", poolclass=StaticPool)
        engines.append(engine)
        metadata.create_all(engine.sync_engine)
        return AsyncSqlAlchemyUnitOfWork(engine).sync

    try:
        yield factory
    finally:
        for engine in engines:
            await engine.dispose()


def _postgres(sync_engine: Engine) -> Callable[[], Any]:
    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[Callable[[], UnitOfWork]]:
        engine = asyncpg_target(sync_engine).engine()

        def factory() -> UnitOfWork:
            reset_schema(sync_engine)
            return AsyncSqlAlchemyUnitOfWork(engine).sync

        try:
            yield factory
        finally:
            await engine.dispose()

    return session


@pytest.fixture(
    params=[
        pytest.param("aiosqlite", id="aiosqlite"),
        pytest.param("asyncpg", id="asyncpg", marks=pytest.mark.postgres),
    ]
)
def session(request: pytest.FixtureRequest) -> Callable[[], Any]:
    """A factory of async sessions, each yielding fresh storages for one example."""
    if request.param == "aiosqlite":
        return lambda: _aiosqlite(request)
    return _postgres(request.getfixturevalue("postgres_engine"))


@pytest.mark.parametrize("number", NUMBERS)
def test_property_holds_through_the_async_services_s10(
    number: str, session: Callable[[], Any]
) -> None:
    """§10 / §6 P1-P9: each property, unchanged, through `magiclink.asyncio`."""
    prop = PROPERTIES[number]

    async def example(args: dict[str, Any]) -> None:
        async with session() as factory:
            await run_in_bridge(prop.check, factory, **args)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(args=prop.arguments)
    def check(args: dict[str, Any]) -> None:
        with through_async_services():
            run_loop(example(args))

    check()


def test_the_world_really_runs_on_the_async_services() -> None:
    """The facade is not vacuous: under `through_async_services` a world's services are
    facades over `magiclink.asyncio`, whose calls need the bridge."""
    from magiclink.testing.world import World
    from tests.asyncio.facade import SyncFacade

    with through_async_services():
        world = World.build()
    assert isinstance(world.guests, SyncFacade)
    with pytest.raises(MissingGreenlet):
        world.guests.get_guest("a@example.com")
    booking, raw = run_loop(run_in_bridge(world.book))
    assert booking.id > 0 and raw
