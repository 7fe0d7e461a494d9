"""SPEC §10: every public method of each sync service has an async twin of the same name and
signature, a coroutine that only delegates (no service logic is copied)."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from magiclink import BookingService, GuestService, QualityRepository, RatingService
from magiclink.asyncio import (
    AsyncBookingService,
    AsyncGuestService,
    AsyncQualityRepository,
    AsyncRatingService,
)

TWINS = [
    pytest.param(AsyncGuestService, GuestService, id="guests"),
    pytest.param(AsyncBookingService, BookingService, id="bookings"),
    pytest.param(AsyncRatingService, RatingService, id="ratings"),
    pytest.param(AsyncQualityRepository, QualityRepository, id="quality"),
]


def _public_methods(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    }


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_the_async_twin_has_exactly_the_sync_methods_s10(async_cls: type, sync_cls: type) -> None:
    """§10: same method names, link actions and admin methods included."""
    assert set(_public_methods(async_cls)) == set(_public_methods(sync_cls))


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_each_async_method_is_a_coroutine_with_the_sync_signature_s10(
    async_cls: type, sync_cls: type
) -> None:
    """§10: parameters, kinds, defaults and annotations (results included) are the twin's."""
    for name, sync_method in _public_methods(sync_cls).items():
        async_method = getattr(async_cls, name)
        assert inspect.iscoroutinefunction(async_method), name
        assert inspect.signature(async_method) == inspect.signature(sync_method), name  # type: ignore[arg-type]


@pytest.mark.parametrize(("async_cls", "sync_cls"), TWINS)
def test_each_async_method_is_one_delegation_to_its_twin_s10(
    async_cls: type, sync_cls: type
) -> None:
    """§10 "the async layer must not copy service logic": after the docstring each body is
    the single statement `return await run(self._sync.<same name>, ...)`."""
    for name in _public_methods(sync_cls):
        source = textwrap.dedent(inspect.getsource(getattr(async_cls, name)))
        function = ast.parse(source).body[0]
        assert isinstance(function, ast.AsyncFunctionDef)
        body = function.body[1:] if ast.get_docstring(function) else function.body
        assert len(body) == 1, name
        statement = body[0]
        assert isinstance(statement, ast.Return), name
        awaited = statement.value
        assert isinstance(awaited, ast.Await), name
        call = awaited.value
        assert isinstance(call, ast.Call), name
        assert isinstance(call.func, ast.Name), name
        assert call.func.id == "run", name
        target = call.args[0]
        assert ast.unparse(target) == f"self._sync.{name}", name
