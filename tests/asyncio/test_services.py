"""The async services on the in-memory unit of work and on aiosqlite/asyncpg/psycopg: the
domain's results and errors (SPEC §10), the async notifier, the bridge's failure modes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import create_async_engine

from magiclink import (
    BookingClosed,
    BookingStatus,
    InvalidToken,
    LinkMessage,
    Requester,
    StorageError,
    TokenExpiredOrUsed,
    build_services,
    generate_raw_token,
)
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock
from magiclink.asyncio import (
    AsyncInMemoryNotifier,
    AsyncNotifier,
    AsyncServices,
    AsyncSqlAlchemyUnitOfWork,
    build_async_services,
)
from magiclink.ports import UnitOfWork
from magiclink.testing.world import EPOCH, raw_from_url
from tests.asyncio.targets import AsyncTarget, run_loop


def _services(
    uow: AsyncSqlAlchemyUnitOfWork | UnitOfWork,
) -> tuple[AsyncServices, AsyncInMemoryNotifier]:
    notifier = AsyncInMemoryNotifier()
    clock = ManualClock(EPOCH)
    return build_async_services(uow, notifier=notifier, clock=clock), notifier


async def _first_success(uow: AsyncSqlAlchemyUnitOfWork | UnitOfWork) -> None:
    services, notifier = _services(uow)
    outcome = await services.bookings.book_session(7, "ada@example.com", EPOCH + timedelta(days=1))
    assert outcome.link_sent
    assert notifier.sent[-1].to == "ada@example.com"
    raw = raw_from_url(notifier.sent[-1].url)
    verified = await services.guests.verify_token(raw, booking_id=outcome.booking.id)
    assert verified.guest.normalized_email == "ada@example.com"
    consumed = await services.guests.consume_token(raw)
    assert consumed.token.used_at is not None
    with pytest.raises(TokenExpiredOrUsed):
        await services.guests.consume_token(raw)
    with pytest.raises(InvalidToken):
        await services.guests.verify_token("not-a-token")
    rating = await services.ratings.create_rating(outcome.booking.id, "guest:1", 5, "great")
    assert (await services.ratings.get_rating(outcome.booking.id)) == rating
    second = await services.bookings.book_session(7, "bob@example.com", EPOCH + timedelta(days=2))
    link = raw_from_url(notifier.sent[-1].url)
    cancelled = await services.bookings.cancel_with_link(link, "ill", booking_id=second.booking.id)
    assert cancelled.status is BookingStatus.CANCELLED
    with pytest.raises(TokenExpiredOrUsed):
        await services.guests.verify_token(link)
    with pytest.raises(BookingClosed):
        await services.bookings.cancel_session(
            second.booking.id, "again", "mentor", Requester.system()
        )
    assert [entry.action for entry in await services.guests.audit_trail(limit=1)]


def test_first_success_on_the_in_memory_unit_of_work_as_it_is_s10() -> None:
    """§10: the in-memory unit of work serves the async services unchanged."""
    run_loop(_first_success(InMemoryUnitOfWork()))


def test_first_success_on_each_async_driver_s10(async_target: AsyncTarget) -> None:
    """§10: aiosqlite, asyncpg and psycopg 3 async give the domain's results and errors."""
    async_target.run(_first_success)


class _RecordingNotifier(AsyncNotifier):
    """An async notifier that really awaits (a loop turn) before recording."""

    def __init__(self) -> None:
        self.sent: list[LinkMessage] = []

    async def send(self, message: LinkMessage) -> None:
        await asyncio.sleep(0)
        self.sent.append(message)


def test_a_host_async_notifier_is_awaited_through_the_bridge_s10() -> None:
    """§10 AsyncNotifier: the domain's mail step awaits the host's coroutine."""
    notifier = _RecordingNotifier()
    services = build_async_services(InMemoryUnitOfWork(), notifier=notifier)

    async def scenario() -> None:
        outcome = await services.bookings.book_session(
            1, "c@example.com", EPOCH + timedelta(days=1)
        )
        assert outcome.link_sent
        assert services.bookings.notifier is notifier

    run_loop(scenario())
    assert [message.to for message in notifier.sent] == ["c@example.com"]


def test_a_failing_async_notifier_is_reported_like_a_sync_one_s10() -> None:
    """§10 same errors: a notifier failure is the domain's `link_sent=False`, the booking kept."""

    class Broken(AsyncNotifier):
        async def send(self, message: LinkMessage) -> None:
            raise ConnectionError("smtp down")

    services = build_async_services(InMemoryUnitOfWork(), notifier=Broken())

    async def scenario() -> None:
        outcome = await services.bookings.book_session(
            1, "d@example.com", EPOCH + timedelta(days=1)
        )
        assert not outcome.link_sent
        assert await services.bookings.get_booking(outcome.booking.id) == outcome.booking

    run_loop(scenario())


def test_the_async_unit_of_work_is_not_a_sync_unit_of_work_s10() -> None:
    """The sync services cannot be handed the async unit of work by mistake (a type error
    for mypy; `isinstance` says so at run time)."""

    async def scenario() -> None:
        engine = create_async_engine("sqlite+aiosqlite://")
        try:
            assert not isinstance(AsyncSqlAlchemyUnitOfWork(engine), UnitOfWork)
        finally:
            await engine.dispose()

    run_loop(scenario())


def test_missing_greenlet_outside_the_bridge_is_not_a_storage_error(
    async_target: AsyncTarget,
) -> None:
    """A programming error stays one: the async engine's sync view used outside the bridge
    raises SQLAlchemy's `MissingGreenlet` from `transaction()`, not an outage-like
    `StorageError`."""

    async def scenario(uow: AsyncSqlAlchemyUnitOfWork) -> None:
        with pytest.raises(sa_exc.MissingGreenlet):
            uow.sync.transaction()

    async_target.run(scenario)


def test_missing_greenlet_through_a_sync_service_stays_a_programming_error(
    async_target: AsyncTarget,
) -> None:
    """A sync service over the async engine's sync view, called outside the bridge, raises
    `MissingGreenlet` rather than `StorageError`."""

    async def scenario(uow: AsyncSqlAlchemyUnitOfWork) -> None:
        services = build_services(uow.sync, notifier=InMemoryNotifier())
        try:
            services.guests.verify_token(generate_raw_token())
        except StorageError as error:
            raise AssertionError("became StorageError") from error
        except sa_exc.MissingGreenlet:
            return
        raise AssertionError("no error at all")

    async_target.run(scenario)


def test_with_uow_nests_per_task_not_per_thread() -> None:
    """Task safety: `with uow as tx:` keeps its stack in a ContextVar, so two tasks of one
    thread interleaving their blocks each leave with their own transaction."""
    uow = InMemoryUnitOfWork()
    seen: dict[str, object] = {}
    entered = asyncio.Event()

    async def first() -> None:
        with uow as tx:
            seen["first"] = tx
            entered.set()
            await asyncio.sleep(0)
            seen["first_after"] = tx
        seen["first_stack"] = uow._stack.get()

    async def second() -> None:
        await entered.wait()
        seen["second_stack_before"] = uow._stack.get()

    async def scenario() -> None:
        await asyncio.gather(first(), second())

    run_loop(scenario())
    assert seen["second_stack_before"] == ()
    assert seen["first_stack"] == ()
    assert seen["first"] is seen["first_after"]
