"""`AsyncSqlAlchemyUnitOfWork`: the SQL unit of work over a host's `AsyncEngine`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork


class AsyncSqlAlchemyUnitOfWork:
    """The unit of work the async services run on, over any `AsyncEngine` (aiosqlite,
    asyncpg, psycopg 3 async).

    It wraps a `SqlAlchemyUnitOfWork` over `async_engine.sync_engine`, exactly as SQLAlchemy's
    `AsyncSession` wraps a `Session`: the same statements, transactions and error translation
    run, and each driver call is awaited through the greenlet bridge. It is deliberately not a
    `UnitOfWork`: handing it to the synchronous `build_services` is a type error, since
    outside the bridge every statement would raise `MissingGreenlet`. Nothing connects until
    the first operation.
    """

    def __init__(self, async_engine: AsyncEngine) -> None:
        self._async_engine = async_engine
        self._sync = SqlAlchemyUnitOfWork(async_engine.sync_engine)

    @property
    def async_engine(self) -> AsyncEngine:
        """The host's engine this unit of work draws its connections from."""
        return self._async_engine

    @property
    def sync(self) -> SqlAlchemyUnitOfWork:
        """The synchronous unit of work inside; usable only within the greenlet bridge."""
        return self._sync


__all__ = ["AsyncSqlAlchemyUnitOfWork"]
