"""A racer process for tests/actions/test_races.py: its own interpreter, engine and pool."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import create_engine

from magiclink import MagicLinkError, TokenExpiredOrUsed
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.testing import World

NEW_START_AHEAD = timedelta(days=3)


def act(world: World, action: str, raw: str) -> object:
    """Present `raw` to the link action named `action`."""
    if action == "cancel":
        return world.bookings.cancel_with_link(raw, "race")
    if action == "reschedule":
        return world.bookings.reschedule_with_link(raw, world.clock.now() + NEW_START_AHEAD)
    if action == "rate":
        return world.ratings.rate_with_link(raw, 5, "race")
    if action == "report":
        return world.quality.report_with_link(raw, "late", "race")
    raise AssertionError(f"unknown action {action}")


def outcome(world: World, action: str, raw: str) -> str:
    """`won`, `used` (TokenExpiredOrUsed) or the name of any other error."""
    try:
        act(world, action, raw)
    except TokenExpiredOrUsed:
        return "used"
    except MagicLinkError as error:
        return type(error).__name__
    return "won"


def racer(
    url: str,
    now: datetime,
    rounds: list[tuple[str, str]],
    barrier: Any,
    results: Any,
    worker: int,
) -> None:
    """Wait at the barrier, present each round's link to its action, report the outcome."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        world = World.build(SqlAlchemyUnitOfWork(engine), start=now)
        for number, (action, raw) in enumerate(rounds):
            barrier.wait()
            results.put((number, worker, outcome(world, action, raw)))
    except BaseException as error:
        barrier.abort()
        results.put((-1, worker, f"error {type(error).__name__}: {error}"))
    finally:
        engine.dispose()
