"""Async engines on the test databases of tests/databases.py: aiosqlite, asyncpg, psycopg 3.

An async engine belongs to the event loop that uses it, so a target hands out a *factory*,
called inside the loop (`asyncio.run`) of each test or example, and the test disposes it.
The tables are those of the sync fixtures (a SQLite file; this process's PostgreSQL schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import attrs
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from magiclink.asyncio import AsyncSqlAlchemyUnitOfWork

T = TypeVar("T")


@attrs.frozen
class AsyncTarget:
    """A named database reached through an async driver; `engine()` builds a new engine."""

    name: str
    url: URL
    connect_args: dict[str, Any] = attrs.field(factory=dict)

    def engine(self, **kwargs: Any) -> AsyncEngine:
        """A new async engine on the target (call it inside the loop that will use it)."""
        return create_async_engine(self.url, connect_args=self.connect_args, **kwargs)

    def run(self, scenario: Callable[[AsyncSqlAlchemyUnitOfWork], Awaitable[T]]) -> T:
        """Run `scenario(uow)` on a fresh loop and engine; dispose of the engine after."""

        async def main() -> T:
            engine = self.engine()
            try:
                return await scenario(AsyncSqlAlchemyUnitOfWork(engine))
            finally:
                await engine.dispose()

        return run_loop(main())


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, typed."""
    return asyncio.run(coroutine)


def aiosqlite_target(engine: Engine) -> AsyncTarget:
    """The SQLite file of a `sqlite_engine` fixture, through aiosqlite."""
    return AsyncTarget("aiosqlite", engine.url.set(drivername="sqlite+aiosqlite"))


def asyncpg_target(engine: Engine) -> AsyncTarget:
    """The schema of a `postgres_engine` fixture, through asyncpg.

    asyncpg takes the `search_path` as a server setting, not libpq's `options`.
    """
    options = str(engine.url.query.get("options", ""))
    schema = options.removeprefix("-csearch_path=") if options else "public"
    url = engine.url.set(drivername="postgresql+asyncpg").difference_update_query(["options"])
    return AsyncTarget("asyncpg", url, {"server_settings": {"search_path": schema}})


def psycopg_async_target(engine: Engine) -> AsyncTarget:
    """The schema of a `postgres_engine` fixture, through psycopg 3's async connection."""
    return AsyncTarget("psycopg_async", engine.url.set(drivername="postgresql+psycopg_async"))
