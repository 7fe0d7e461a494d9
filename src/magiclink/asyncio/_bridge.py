"""The one seam between the coroutine world and the synchronous domain.

`run(fn, ...)` runs a synchronous service method in a new greenlet (SQLAlchemy's
`greenlet_spawn`, the mechanism of its own `AsyncSession`). Whenever a driver below it needs
I/O it calls `await_only`, which suspends that greenlet and hands the awaitable to the task
awaiting `run`: the event loop keeps serving other tasks meanwhile. Nothing else crosses the
boundary, so the domain is written once.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.util import await_only, greenlet_spawn

P = ParamSpec("P")
T = TypeVar("T")


async def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Await the synchronous `fn(*args, **kwargs)` run inside the greenlet bridge."""
    # Bound first: greenlet_spawn's own keyword `_require_await` must not meet the caller's.
    return await greenlet_spawn(functools.partial(fn, *args, **kwargs))


def wait(awaitable: Awaitable[T]) -> T:
    """Inside `run`: suspend the bridged call until `awaitable` is done; its result.

    Raises:
        sqlalchemy.exc.MissingGreenlet: called outside `run` (a programming error).
    """
    return await_only(awaitable)


__all__ = ["run", "wait"]
