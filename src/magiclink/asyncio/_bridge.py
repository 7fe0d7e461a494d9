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
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

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


S = TypeVar("S")


class Shell(Generic[S]):
    """An async service: the sync service `_sync` whose methods its `Twin`s await."""

    def __init__(self, sync: S) -> None:
        self._sync = sync


class Twin(Generic[P, T]):
    """A method of an async service: its sync twin's, awaited through `run` (SPEC §10).

    Declared in a `Shell`'s body as `verify_token = Twin(GuestService.verify_token)`. On an
    instance it is a coroutine function with the twin's name, docstring and exact signature
    (`inspect.signature`, types for mypy included) that awaits
    `run(<the instance's sync service>.<name>, *args, **kwargs)`, arguments and result
    passed unchanged: no service logic is copied, and no signature is spelled twice.
    """

    def __init__(self, method: Callable[Concatenate[Any, P], T]) -> None:
        self._method = method
        self._name = method.__name__
        self.__doc__ = f"See `{method.__qualname__}`, awaited."
        signature = inspect.signature(method)
        self._signature = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __set_name__(self, owner: type[Shell[Any]], name: str) -> None:
        if name != self._name:
            raise TypeError(f"{owner.__name__}.{name} is the twin of {self._name!r}: name it so")

    @overload
    def __get__(self, instance: None, owner: type[Shell[Any]]) -> Self: ...

    @overload
    def __get__(
        self, instance: Shell[Any], owner: type[Shell[Any]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    def __get__(
        self, instance: Shell[Any] | None, owner: type[Shell[Any]]
    ) -> Self | Callable[P, Coroutine[Any, Any, T]]:
        if instance is None:
            return self
        method: Callable[P, T] = getattr(instance._sync, self._name)

        async def twin(*args: P.args, **kwargs: P.kwargs) -> T:
            return await run(method, *args, **kwargs)

        functools.update_wrapper(twin, self._method)
        twin.__signature__ = self._signature  # type: ignore[attr-defined]  # without `self`
        # Made once per instance: the instance's own attribute from now on.
        instance.__dict__[self._name] = twin
        return twin


__all__ = ["Shell", "Twin", "run", "wait"]
