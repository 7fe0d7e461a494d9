"""A small host for the observability tests: every service on one unit of work and clock."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs

from magiclink import (
    BookingService,
    GuestService,
    QualityRepository,
    RatingService,
    Requester,
    Settings,
)
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock
from magiclink.domain.policy import hash_token
from magiclink.ports import Metrics, UnitOfWork

EPOCH: Final = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
MENTOR: Final = Requester(user_id=7)
SYSTEM: Final = Requester.system()
RAW_TOKEN: Final = re.compile(r"[0-9a-f]{64}")


@attrs.define
class World:
    """The services of one host, sharing a unit of work, a manual clock and an outbox."""

    uow: UnitOfWork
    clock: ManualClock
    outbox: InMemoryNotifier
    guests: GuestService
    bookings: BookingService
    ratings: RatingService
    quality: QualityRepository

    def book(self, email: str = "ada@example.com") -> int:
        """Book a session two days ahead for `email`; its id."""
        start = self.clock.now() + timedelta(days=2)
        return self.bookings.book_session(
            mentor_id=7, guest_email=email, start_time=start
        ).booking.id

    def last_raw(self) -> str:
        """The raw token of the last mailed link."""
        return self.outbox.sent[-1].url.split("token=")[1]

    def raw_tokens(self) -> list[str]:
        """Every raw token ever mailed."""
        return [message.url.split("token=")[1] for message in self.outbox.sent]


def build(
    metrics: Metrics | None = None,
    *,
    uow: UnitOfWork | None = None,
    settings: Settings | None = None,
) -> World:
    """A fresh world on `uow` (default: a new in-memory one)."""
    uow = uow if uow is not None else InMemoryUnitOfWork()
    clock = ManualClock(EPOCH)
    outbox = InMemoryNotifier()
    guests = GuestService(uow, clock=clock, settings=settings, metrics=metrics)
    return World(
        uow=uow,
        clock=clock,
        outbox=outbox,
        guests=guests,
        bookings=BookingService(uow, guests, notifier=outbox),
        ratings=RatingService(uow, guests),
        quality=QualityRepository(uow, guests),
    )


def secrets_in(raws: Iterable[str]) -> Iterator[str]:
    """Each raw token and its SHA-256 hash: what must never appear in a log or a message."""
    for raw in raws:
        yield raw
        yield hash_token(raw)
