"""SPEC §10: the FastAPI example (examples/fastapi_async) over HTTP, through httpx's ASGI
transport: request a link, view with it (read-only), cancel with it, then it is dead."""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import httpx
from sqlalchemy import Engine

from magiclink.adapters.memory import InMemoryUnitOfWork, ManualClock
from magiclink.asyncio import (
    AsyncInMemoryNotifier,
    AsyncSqlAlchemyUnitOfWork,
    build_async_services,
)
from magiclink.ports import UnitOfWork
from magiclink.testing.world import EPOCH, raw_from_url
from tests.asyncio.targets import aiosqlite_target, run_loop

APP = Path(__file__).resolve().parents[2] / "examples" / "fastapi_async" / "app.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_async_example", APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _over_http(uow: AsyncSqlAlchemyUnitOfWork | UnitOfWork) -> None:
    notifier = AsyncInMemoryNotifier()
    clock = ManualClock(EPOCH)
    services = build_async_services(uow, notifier=notifier, clock=clock)
    app = _example().create_app(services)
    outcome = await services.bookings.book_session(7, "ada@example.com", EPOCH + timedelta(days=1))
    raw = raw_from_url(notifier.sent[-1].url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for _ in range(2):  # a scanner's GET, then the guest's: both read, neither spends
            viewed = await client.get("/magic-link", params={"token": raw})
            assert viewed.status_code == 200, viewed.text
            assert viewed.json()["booking"]["id"] == outcome.booking.id
            assert viewed.json()["booking"]["status"] == "scheduled"
        assert (await client.get("/magic-link", params={"token": "nope"})).status_code == 401

        clock.advance(services.guests.settings.request_interval)
        requested = await client.post(
            "/links", json={"email": "ada@example.com", "booking_id": outcome.booking.id}
        )
        assert requested.status_code == 202
        assert "token" not in requested.text  # the link goes by mail only
        assert notifier.sent[-1].to == "ada@example.com"
        again = await client.post("/links", json={"email": "ada@example.com"})
        assert again.status_code == 429, again.text

        cancelled = await client.post(
            "/magic-link/cancel",
            json={"token": raw, "reason": "ill", "booking_id": outcome.booking.id},
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        dead = await client.get("/magic-link", params={"token": raw})
        assert dead.status_code == 401
        assert dead.json() == {"error": "UNAUTHORIZED", "message": "Token expired or used"}
        twice = await client.post("/magic-link/cancel", json={"token": raw, "reason": "x"})
        assert twice.status_code == 401


def test_the_fastapi_example_over_http_in_memory_s10() -> None:
    """§10 example on the in-memory unit of work."""
    run_loop(_over_http(InMemoryUnitOfWork()))


def test_the_fastapi_example_over_http_on_aiosqlite_s10(sqlite_engine: Engine) -> None:
    """§10 example on SQLite through aiosqlite."""
    scenario: Callable[[AsyncSqlAlchemyUnitOfWork], Awaitable[None]] = _over_http
    aiosqlite_target(sqlite_engine).run(scenario)
