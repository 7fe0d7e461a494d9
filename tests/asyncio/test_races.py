"""SPEC §10 (R5/§8.3 with tasks, not threads): 50 tasks race on one link, exactly one wins,
in every one of 20 rounds, on aiosqlite, asyncpg and psycopg 3 async (and in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from magiclink import BookingStatus, MagicLinkError, TokenExpiredOrUsed
from magiclink.adapters.memory import InMemoryUnitOfWork, ManualClock
from magiclink.asyncio import (
    AsyncInMemoryNotifier,
    AsyncServices,
    AsyncSqlAlchemyUnitOfWork,
    build_async_services,
)
from magiclink.ports import UnitOfWork
from magiclink.testing.world import EPOCH, raw_from_url
from tests.asyncio.targets import AsyncTarget, run_loop

TASKS = 50
ROUNDS = 20

Racer = Callable[[AsyncServices, str, int], Awaitable[object]]


async def _consume(services: AsyncServices, raw: str, booking_id: int) -> object:
    return await services.guests.consume_token(raw, booking_id=booking_id)


async def _cancel(services: AsyncServices, raw: str, booking_id: int) -> object:
    return await services.bookings.cancel_with_link(raw, "race", booking_id=booking_id)


RACERS = [pytest.param(_consume, id="consume_token"), pytest.param(_cancel, id="cancel_with_link")]


async def _rounds(uow: AsyncSqlAlchemyUnitOfWork | UnitOfWork, racer: Racer) -> None:
    notifier = AsyncInMemoryNotifier()
    services = build_async_services(uow, notifier=notifier, clock=ManualClock(EPOCH))
    for number in range(ROUNDS):
        outcome = await services.bookings.book_session(
            7, f"racer{number}@example.com", EPOCH + timedelta(days=1, hours=number)
        )
        raw = raw_from_url(notifier.sent[-1].url)
        results = await asyncio.gather(
            *(racer(services, raw, outcome.booking.id) for _ in range(TASKS)),
            return_exceptions=True,
        )
        winners = [r for r in results if not isinstance(r, BaseException)]
        losers = [r for r in results if isinstance(r, BaseException)]
        assert len(winners) == 1, f"round {number}: {len(winners)} winners"
        assert all(isinstance(error, MagicLinkError) for error in losers), losers
        assert all(isinstance(error, TokenExpiredOrUsed) for error in losers), {
            type(error).__name__ for error in losers
        }
        with pytest.raises(TokenExpiredOrUsed):
            await services.guests.verify_token(raw)
        if racer is _cancel:
            booking = await services.bookings.get_booking(outcome.booking.id)
            assert booking is not None
            assert booking.status is BookingStatus.CANCELLED


@pytest.mark.parametrize("racer", RACERS)
def test_50_tasks_one_link_one_winner_every_round_on_each_driver(
    async_target: AsyncTarget, racer: Racer
) -> None:
    """§10 / §8.3: one winner of 50 in each of 20 rounds; every loser is refused cleanly."""
    async_target.run(lambda uow: _rounds(uow, racer))


@pytest.mark.parametrize("racer", RACERS)
def test_50_tasks_one_link_one_winner_every_round_in_memory(racer: Racer) -> None:
    """§10: the in-memory unit of work is safe for many tasks on one loop."""
    run_loop(_rounds(InMemoryUnitOfWork(), racer))
