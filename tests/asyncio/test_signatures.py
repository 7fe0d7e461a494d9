"""SPEC §10: every public method of each sync service has an async twin of the same name and
signature, a coroutine that only delegates (no service logic is copied)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, cast

import pytest

from magiclink import BookingService, GuestService, QualityRepository, RatingService
from magiclink.asyncio import (
    AsyncBookingService,
    AsyncGuestService,
    AsyncInMemoryNotifier,
    AsyncQualityRepository,
    AsyncRatingService,
)

TWINS = [
    pytest.param(AsyncGuestService, GuestService, id="guests"),
    pytest.param(AsyncBookingService, BookingService, id="bookings"),
    pytest.param(AsyncRatingService, RatingService, id="ratings"),
    pytest.param(AsyncQualityRepository, QualityRepository, id="quality"),
]


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


def _public_callables(cls: type) -> set[str]:
    """The public names of `cls` (inherited ones included) that are not properties."""
    return {
        name
        for name in dir(cls)
        if not name.startswith("_") and not isinstance(inspect.getattr_static(cls, name), property)
    }


class _Recorder:
    """A stand-in sync service: every method records its call and returns a fresh result."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
        self.results: list[object] = []

    def __getattr__(self, name: str) -> Callable[..., object]:
        def method(*args: object, **kwargs: object) -> object:
            self.calls.append((name, args, kwargs))
            self.results.append(object())
            return self.results[-1]

        return method


def _shell(async_cls: type, sync: object) -> Any:
    """`async_cls` around the stand-in `sync` service, as `build_async_services` wraps one."""
    if async_cls is AsyncBookingService:
        return AsyncBookingService(cast(BookingService, sync), AsyncInMemoryNotifier())
    return async_cls(sync)


def _unbound(signature: inspect.Signature) -> inspect.Signature:
    """The signature without its first parameter, `self`."""
    return signature.replace(parameters=list(signature.parameters.values())[1:])


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_the_async_twin_has_exactly_the_sync_methods_s10(async_cls: type, sync_cls: type) -> None:
    """§10: same method names, link actions and admin methods included."""
    assert _public_callables(async_cls) == set(_public_methods(sync_cls))


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_each_async_method_is_a_coroutine_with_the_sync_signature_s10(
    async_cls: type, sync_cls: type
) -> None:
    """§10: parameters, kinds, defaults and annotations (results included) are the twin's."""
    shell = _shell(async_cls, _Recorder())
    for name, sync_method in _public_methods(sync_cls).items():
        async_method = getattr(shell, name)
        assert inspect.iscoroutinefunction(async_method), name
        expected = _unbound(inspect.signature(sync_method))
        assert inspect.signature(async_method) == expected, name


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_each_async_method_is_one_delegation_to_its_twin_s10(
    async_cls: type, sync_cls: type
) -> None:
    """§10 "the async layer must not copy service logic": awaiting a method calls its sync
    twin of the same name once, with exactly the arguments given (each parameter passed,
    positional ones by position, keyword-only ones by keyword), and returns its result."""
    for name, sync_method in _public_methods(sync_cls).items():
        sync = _Recorder()
        parameters = list(inspect.signature(sync_method).parameters.values())[1:]
        args = tuple(object() for p in parameters if p.kind is not p.KEYWORD_ONLY)
        kwargs = {p.name: object() for p in parameters if p.kind is p.KEYWORD_ONLY}

        result = asyncio.run(getattr(_shell(async_cls, sync), name)(*args, **kwargs))

        assert sync.calls == [(name, args, kwargs)], name
        assert result is sync.results[0], name


def test_a_twin_of_another_name_is_refused_s10() -> None:
    """A `Twin` must stand under its sync method's own name: a misnamed one fails at class
    creation, not at the first call."""
    with pytest.raises(Exception) as raised:  # which one depends on the Python: see below

        class _Misnamed(AsyncGuestService):
            consume_token = AsyncGuestService.verify_token

    # Python 3.11 wraps an error of __set_name__ in RuntimeError; 3.12 raises it as it is.
    error = raised.value.__cause__ or raised.value
    assert isinstance(error, TypeError)
    assert str(error) == "_Misnamed.consume_token is the twin of 'verify_token': name it so"
