"""The one seam between the coroutine world and the synchronous domain.

`run(fn, ...)` runs a synchronous service method in a new greenlet (SQLAlchemy's
`greenlet_spawn`, the mechanism of its own `AsyncSession`). Whenever a driver below it needs
I/O it calls `await_only`, which suspends that greenlet and hands the awaitable to the task
awaiting `run`: the event loop keeps serving other tasks meanwhile. Nothing else crosses the
boundary, so the domain is written once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.util import await_only, greenlet_spawn

P = ParamSpec("P")
T = TypeVar("T")


async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Await the synchronous `fn(*args, **kwargs)` run inside the greenlet bridge.

    Cancelling the awaiting task lets the operation finish first (one transaction: it
    commits wholly or rolls back wholly), then raises `CancelledError`; a second cancellation
    interrupts it where it stands. Why: a cancellation thrown into a driver call makes
    SQLAlchemy invalidate the connection, and with aiosqlite the connection then closed with
    a cursor still open is only a "zombie" (`sqlite3_close_v2`) that keeps the transaction,
    and the database's write lock, until the garbage collector finalizes that cursor.
    """
    # Bound first: greenlet_spawn's own keyword `_require_await` must not meet the caller's.
    operation = asyncio.ensure_future(greenlet_spawn(functools.partial(fn, *args, **kwargs)))
    try:
        return await asyncio.shield(operation)
    except asyncio.CancelledError:
        if not operation.done():
            try:
                # asyncio.wait never cancels what it waits for: a second cancellation of
                # this task lands here, and only then reaches the operation.
                await asyncio.wait((operation,))
            except asyncio.CancelledError:
                operation.cancel()
                await asyncio.wait((operation,))
                raise
        if not operation.cancelled():
            operation.exception()  # retrieved: the caller asked for the cancellation instead
        raise


def wait(awaitable: Awaitable[T]) -> T:
    """Inside `run`: suspend the bridged call until `awaitable` is done; its result.

    Raises:
        sqlalchemy.exc.MissingGreenlet: called outside `run` (a programming error).
    """
    return await_only(awaitable)


__all__ = ["run", "wait"]
