"""A world for the guest's page: in-memory services on a manual clock, one booked session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from magiclink import Booking, Services, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock

SECRET = "test-secret-key-of-the-guest-page"
START = datetime(2030, 3, 5, 14, 0, tzinfo=UTC)


@attrs.define
class World:
    services: Services
    notifier: InMemoryNotifier
    clock: ManualClock
    booking: Booking
    raw: str

    def link(self) -> str:
        return self.notifier.sent[-1].url

    def current(self) -> Booking:
        booking = self.services.bookings.get_booking(self.booking.id)
        assert booking is not None
        return booking


def make_world(base: str = "http://127.0.0.1:8000/magic-link") -> World:
    notifier = InMemoryNotifier()
    clock = ManualClock(START - timedelta(days=2))
    services = build_services(
        InMemoryUnitOfWork(), notifier=notifier, clock=clock, settings=Settings(link_base_url=base)
    )
    outcome = services.bookings.book_session(42, "ada@example.com", START)
    raw = notifier.sent[-1].url.split("token=")[1]
    return World(services, notifier, clock, outcome.booking, raw)


@pytest.fixture
def world() -> World:
    return make_world()
