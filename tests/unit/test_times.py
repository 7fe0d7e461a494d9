"""SPEC §2: "All times are timezone-aware UTC". Aware input in another zone is the same
instant and must come back (and be stored) as UTC, as the SQL adapter already does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from magiclink import Requester
from magiclink.adapters.memory import ManualClock
from tests.unit.harness import MENTOR, STUDENT, Harness

PLUS_FIVE = timezone(timedelta(hours=5))
MINUS_THREE = timezone(timedelta(hours=-3))


def _is_utc(value: datetime) -> bool:
    return value.utcoffset() == timedelta(0)


def test_booking_times_given_in_another_zone_are_stored_and_returned_as_utc() -> None:
    h = Harness.build()
    start = datetime(2030, 6, 1, 14, 0, tzinfo=PLUS_FIVE)
    booking = h.bookings.book_session(MENTOR, STUDENT, start).booking
    stored = h.booking(booking.id)
    for value in (booking.start_time, booking.end_time, stored.start_time, stored.end_time):
        assert value == start or value == start + timedelta(minutes=15)  # same instants
        assert _is_utc(value), value


def test_rescheduled_times_given_in_another_zone_are_stored_and_returned_as_utc() -> None:
    h = Harness.build()
    booking, _ = h.book()
    new_start = datetime(2030, 6, 2, 9, 0, tzinfo=MINUS_THREE)
    moved = h.bookings.reschedule_session(booking.id, new_start, Requester.system()).booking
    stored = h.booking(booking.id)
    assert moved.start_time == new_start == stored.start_time
    assert _is_utc(moved.start_time) and _is_utc(stored.start_time)


def test_manual_clock_started_in_another_zone_tells_utc() -> None:
    """The Clock port: "The current instant, timezone-aware UTC"."""
    start = datetime(2030, 1, 1, 0, 0, tzinfo=MINUS_THREE)
    clock = ManualClock(start)
    assert clock.now() == start
    assert _is_utc(clock.now())
    clock.set(datetime(2030, 1, 2, tzinfo=PLUS_FIVE))
    assert _is_utc(clock.now())
    assert clock.now() == datetime(2030, 1, 1, 19, 0, tzinfo=UTC)
