"""SPEC §10: a task cancelled at any await point leaves no half-written operation.

For each step k the operation runs as a task that is cancelled after k turns of the event
loop, on a fresh booking and link, until an operation finishes before its cancellation (with
the PostgreSQL drivers that covers every await point; aiosqlite hands each statement to its
thread, which takes more turns than `MAX_STEPS`, so there the first `MAX_STEPS` are covered).
The greenlet bridge of `magiclink.asyncio` lets a cancelled operation finish before raising
`CancelledError`, so each one must be whole.
After each cancellation: no connection is left checked out, the operation happened wholly or
not at all, and the next write succeeds at once (on SQLite a leaked `BEGIN IMMEDIATE` would
hold the write lock and make it fail after the busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

import pytest

from magiclink import BookingStatus, TokenExpiredOrUsed
from magiclink.adapters.memory import ManualClock
from magiclink.asyncio import (
    AsyncInMemoryNotifier,
    AsyncServices,
    AsyncSqlAlchemyUnitOfWork,
    build_async_services,
)
from magiclink.testing.world import EPOCH, raw_from_url
from tests.asyncio.targets import AsyncTarget

MAX_STEPS = 120

Check = Callable[[AsyncServices, str, int, bool], Awaitable[None]]


async def _consume_is_whole(services: AsyncServices, raw: str, booking_id: int, done: bool) -> None:
    """The token is either untouched or consumed at the operation's time; if untouched,
    consuming it now succeeds, else it is refused as used."""
    (token,) = await services.guests.tokens_for_booking(booking_id)
    assert token.used_at in (None, EPOCH), token
    assert not token.invalidated
    if done:
        assert token.used_at is not None
    if token.used_at is None:
        await services.guests.consume_token(raw, booking_id=booking_id)
    else:
        with pytest.raises(TokenExpiredOrUsed):
            await services.guests.consume_token(raw, booking_id=booking_id)


async def _cancel_is_whole(services: AsyncServices, raw: str, booking_id: int, done: bool) -> None:
    """Booking cancelled ⇔ its link is dead; if not cancelled, the link action succeeds now."""
    booking = await services.bookings.get_booking(booking_id)
    assert booking is not None
    tokens = await services.guests.tokens_for_booking(booking_id)
    cancelled = booking.status is BookingStatus.CANCELLED
    assert all(t.used_at is not None for t in tokens) == cancelled, (booking, tokens)
    if done:
        assert cancelled
    if not cancelled:
        await services.bookings.cancel_with_link(raw, "after", booking_id=booking_id)
    else:
        with pytest.raises(TokenExpiredOrUsed):
            await services.guests.verify_token(raw)


async def _op_consume(services: AsyncServices, raw: str, booking_id: int) -> object:
    return await services.guests.consume_token(raw, booking_id=booking_id)


async def _op_cancel(services: AsyncServices, raw: str, booking_id: int) -> object:
    return await services.bookings.cancel_with_link(raw, "cancelled task", booking_id=booking_id)


CASES = [
    pytest.param(_op_consume, _consume_is_whole, id="consume_token"),
    pytest.param(_op_cancel, _cancel_is_whole, id="cancel_with_link"),
]


async def _every_step(
    uow: AsyncSqlAlchemyUnitOfWork,
    operation: Callable[[AsyncServices, str, int], Coroutine[Any, Any, object]],
    check: Check,
) -> int:
    notifier = AsyncInMemoryNotifier()
    services = build_async_services(uow, notifier=notifier, clock=ManualClock(EPOCH))
    pool = uow.async_engine.sync_engine.pool
    cancelled_runs = 0
    for step in range(MAX_STEPS):
        outcome = await services.bookings.book_session(
            7, f"c{step}@example.com", EPOCH + timedelta(days=1, minutes=20 * step)
        )
        raw = raw_from_url(notifier.sent[-1].url)
        task = asyncio.create_task(operation(services, raw, outcome.booking.id))
        for _ in range(step):
            await asyncio.sleep(0)
        done = task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cancelled_runs += 0 if done else 1
        assert pool.checkedout() == 0, f"step {step}: a connection is still checked out"  # type: ignore[attr-defined]
        await check(services, raw, outcome.booking.id, done)
        if done:
            break
    return cancelled_runs


@pytest.mark.parametrize(("operation", "check"), CASES)
def test_a_task_cancelled_at_any_step_leaves_nothing_half_written_s10(
    async_target: AsyncTarget,
    operation: Callable[[AsyncServices, str, int], Coroutine[Any, Any, object]],
    check: Check,
) -> None:
    """§10: cancellation at each await point; invariants hold after every one of them."""
    cancelled_runs = async_target.run(lambda uow: _every_step(uow, operation, check))
    assert cancelled_runs >= 1  # the operation really was cut short at least once


async def _cancelled_twice(uow: AsyncSqlAlchemyUnitOfWork, turns: int) -> tuple[int, int]:
    """Cancel a link action twice, `turns` loop turns apart; (interrupted, completed)."""
    notifier = AsyncInMemoryNotifier()
    services = build_async_services(uow, notifier=notifier, clock=ManualClock(EPOCH))
    pool = uow.async_engine.sync_engine.pool
    interrupted = completed = 0
    for step in range(turns):
        outcome = await services.bookings.book_session(
            7, f"t{step}@example.com", EPOCH + timedelta(days=1, minutes=20 * step)
        )
        raw = raw_from_url(notifier.sent[-1].url)
        task = asyncio.create_task(_op_cancel(services, raw, outcome.booking.id))
        await asyncio.sleep(0)
        task.cancel()
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        booking = await services.bookings.get_booking(outcome.booking.id)
        assert booking is not None
        if booking.status is BookingStatus.CANCELLED:
            completed += 1
        else:
            interrupted += 1
        await _cancel_is_whole(services, raw, outcome.booking.id, done=False)
    return interrupted, completed


@pytest.mark.postgres
@pytest.mark.parametrize("make", ["asyncpg", "psycopg_async"])
def test_a_second_cancellation_interrupts_and_still_leaves_nothing_half_written_s10(
    make: str, request: pytest.FixtureRequest
) -> None:
    """§10: the second cancellation reaches the operation itself (it is interrupted, not
    awaited); whatever the point, the transaction is whole and the connection returned.

    PostgreSQL only: with aiosqlite an interrupted statement leaves a connection that keeps
    SQLite's write lock until the garbage collector finalizes its cursor (docs/asyncio.md).
    """
    from tests.asyncio.targets import asyncpg_target, psycopg_async_target

    engine = request.getfixturevalue("postgres_engine")
    target = asyncpg_target(engine) if make == "asyncpg" else psycopg_async_target(engine)
    interrupted, completed = target.run(lambda uow: _cancelled_twice(uow, 40))
    assert interrupted >= 1, "no second cancellation interrupted an operation"
    assert interrupted + completed == 40
