"""The guest-path tests' world: the shipped test world at a fixed start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from magiclink import Settings
from magiclink.ports import UnitOfWork
from magiclink.testing import World

__all__ = ["ADA", "BOB", "START", "world_on"]

START: Final = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
ADA: Final = "ada@example.com"
BOB: Final = "bob@example.com"


def world_on(uow: UnitOfWork, settings: Settings | None = None) -> World:
    """The shipped world over `uow` at `START`; by default no request interval, so that only
    the hourly cap (§9.4) limits a guest's requests."""
    chosen = settings if settings is not None else Settings(request_interval=timedelta(0))
    return World.build(uow, start=START, settings=chosen)
