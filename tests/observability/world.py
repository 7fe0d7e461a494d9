"""The observability suite's defaults on the shipped test world (`magiclink.testing.World`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

from magiclink import Requester, Settings
from magiclink.ports import Metrics, UnitOfWork
from magiclink.testing import World as _World
from magiclink.testing import hash_token

__all__ = ["EPOCH", "MENTOR", "RAW_TOKEN", "SYSTEM", "World", "build", "secrets_in"]

EPOCH: Final = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
MENTOR: Final = Requester(user_id=7)
SYSTEM: Final = Requester.system()
RAW_TOKEN: Final = re.compile(r"[0-9a-f]{64}")


class World(_World):
    """The shipped world; `book_id` books two days ahead and answers the booking's id."""

    def book_id(self, email: str = "ada@example.com") -> int:
        """Book a session two days ahead for `email`; its id."""
        booking, _ = self.book(email, ahead=timedelta(days=2))
        return booking.id


def build(
    metrics: Metrics | None = None,
    *,
    uow: UnitOfWork | None = None,
    settings: Settings | None = None,
) -> World:
    """A fresh world on `uow` (default: a new in-memory one), its services on `metrics`."""
    return World.build(uow, start=EPOCH, settings=settings, metrics=metrics)


def secrets_in(raws: Iterable[str]) -> Iterator[str]:
    """Each raw token and its SHA-256 hash: what must never appear in a log or a message."""
    for raw in raws:
        yield raw
        yield hash_token(raw)
