"""Sync facades over the async services, so the existing suites run through them unchanged.

`through_async_services()` makes `magiclink.testing.world.World` (the test world of the
contract checks and of P1-P9) wire `build_async_services` instead of `build_services`: each
service call of the suite then awaits the async twin with `await_only`, i.e. it goes through
`magiclink.asyncio` exactly as a host's coroutine does. The suite itself runs inside the
greenlet bridge (`run_in_bridge`), so its direct reads through the ports use the async driver
too. Nothing of the suites is copied.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from unittest import mock

from sqlalchemy.util import await_only, greenlet_spawn

from magiclink import LinkMessage, Services, Settings
from magiclink.asyncio import AsyncNotifier, build_async_services
from magiclink.ports import Clock, Metrics, Notifier, Outbox, UnitOfWork

T = TypeVar("T")


class SyncFacade:
    """A sync stand-in for an async service: each coroutine method is awaited in place."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(member):
            return member

        def call(*args: Any, **kwargs: Any) -> Any:
            return await_only(member(*args, **kwargs))

        return call


class AsyncOverSync(AsyncNotifier):
    """The world's recording (sync) notifier behind the async port."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    async def send(self, message: LinkMessage) -> None:
        self.notifier.send(message)


def facade_services(
    uow: UnitOfWork,
    *,
    notifier: Notifier,
    clock: Clock | None = None,
    settings: Settings | None = None,
    metrics: Metrics | None = None,
    outbox: Outbox | None = None,
) -> Services:
    """`build_services`' signature; the async services behind sync facades."""
    if outbox is not None:
        raise AssertionError("the async services take no outbox")
    services = build_async_services(
        uow, notifier=AsyncOverSync(notifier), clock=clock, settings=settings, metrics=metrics
    )
    return Services(
        guests=cast(Any, SyncFacade(services.guests)),
        bookings=cast(Any, SyncFacade(services.bookings)),
        ratings=cast(Any, SyncFacade(services.ratings)),
        quality=cast(Any, SyncFacade(services.quality)),
    )


@contextmanager
def through_async_services() -> Iterator[None]:
    """While open, every `World` is wired over the async services."""
    with mock.patch("magiclink.testing.world.build_services", facade_services):
        yield


async def run_in_bridge(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the sync `fn` (a suite's check) inside the greenlet bridge."""
    return await greenlet_spawn(fn, *args, **kwargs)
