"""magiclink for asyncio hosts (FastAPI, Starlette, aiohttp): the same services as coroutines.

::

    from sqlalchemy.ext.asyncio import create_async_engine
    from magiclink.asyncio import (
        AsyncInMemoryNotifier, AsyncSqlAlchemyUnitOfWork, build_async_services,
    )

    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    services = build_async_services(
        AsyncSqlAlchemyUnitOfWork(engine), notifier=AsyncInMemoryNotifier()
    )
    verified = await services.guests.verify_token(raw)

Each async method runs its synchronous twin through SQLAlchemy's greenlet bridge (as
`AsyncSession` does): one domain, two thin shells. See docs/asyncio.md. Needs the
`magiclink[asyncio]` extra.
"""

from __future__ import annotations

from magiclink.asyncio._notifier import AsyncInMemoryNotifier, AsyncNotifier
from magiclink.asyncio._services import (
    AsyncBookingService,
    AsyncGuestService,
    AsyncQualityRepository,
    AsyncRatingService,
    AsyncServices,
    build_async_services,
)
from magiclink.asyncio._unit_of_work import AsyncSqlAlchemyUnitOfWork

__all__ = [
    "AsyncBookingService",
    "AsyncGuestService",
    "AsyncInMemoryNotifier",
    "AsyncNotifier",
    "AsyncQualityRepository",
    "AsyncRatingService",
    "AsyncServices",
    "AsyncSqlAlchemyUnitOfWork",
    "build_async_services",
]
