"""§9.4 The hourly cap: `Settings.max_links_per_hour` guest-initiated links per guest in any
hour; the system paths are exempt; a refused request writes nothing; constant statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from magiclink import InvalidInput, RateLimited, Requester, Settings
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing import World
from tests.databases import count_statements
from tests.guestpath.harness import ADA, BOB, world_on

HOUR = timedelta(hours=1)
HOURLY_CAP_MESSAGE = "Too many links requested this hour: try again later"
"""The cap's own `RateLimited` message, as a guest sees it (pinned here, not imported)."""


def snapshot(world: World, email: str) -> tuple[object, ...]:
    """Everything a request could write: the guest row, the audit log, the token counts."""
    return (world.guests.get_guest(email), world.audit(), world.guests.token_stats())


def test_the_default_cap_is_five_and_the_sixth_request_of_the_hour_is_refused(
    uow: UnitOfWork,
) -> None:
    """§9.4: five guest-initiated links an hour (with or without a booking), then
    `RateLimited` with its own message; the refusal writes nothing."""
    world = world_on(uow)
    assert world.settings.max_links_per_hour == 5
    booking, _ = world.book(ADA)
    for i in range(5):
        world.clock.advance(timedelta(minutes=1))
        world.guests.request_inbox_link(ADA, booking.id if i % 2 else None)
    world.clock.advance(timedelta(minutes=1))
    before = snapshot(world, ADA)

    with pytest.raises(RateLimited) as refused:
        world.guests.request_inbox_link(ADA)

    assert str(refused.value) == HOURLY_CAP_MESSAGE
    assert refused.value.code == "TOO_MANY_REQUESTS"
    assert snapshot(world, ADA) == before
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA, booking.id)
    assert snapshot(world, ADA) == before


def test_a_link_leaves_the_window_one_hour_after_it_was_created(uow: UnitOfWork) -> None:
    """§9.4: only links created *after* `now - 1 h` count: at exactly one hour the oldest
    no longer does, and one request more is allowed (and only one)."""
    world = world_on(uow, Settings(request_interval=timedelta(0), max_links_per_hour=2))
    first = world.guests.request_inbox_link(ADA)
    world.clock.advance(timedelta(minutes=30))
    world.guests.request_inbox_link(ADA)
    world.clock.advance(timedelta(minutes=30) - timedelta(microseconds=1))
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA)

    world.clock.advance(timedelta(microseconds=1))  # the first link is now exactly 1 h old
    third = world.guests.request_inbox_link(ADA)

    assert third.token_id != first.token_id
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA)


def test_the_system_paths_are_exempt_and_do_not_count(uow: UnitOfWork) -> None:
    """§9.4: booking, `issue_booking_link` and reschedule links neither count towards the
    cap nor are refused by it."""
    world = world_on(uow, Settings(request_interval=timedelta(0), max_links_per_hour=1))
    bookings = [world.book(ADA)[0] for _ in range(3)]
    for booking in bookings:
        world.guests.issue_booking_link(ADA, booking.id)
        world.guests.generate_token_for_rescheduled_booking(ADA, booking.id)
    world.guests.request_inbox_link(ADA)  # the cap is still whole: the above did not count
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA)

    # ... and with the cap reached, the system paths still issue
    booking, _ = world.book(ADA)
    world.guests.issue_booking_link(ADA, booking.id)
    world.guests.generate_token_for_rescheduled_booking(ADA, booking.id)
    outcome = world.bookings.reschedule_session(
        booking.id, booking.start_time + timedelta(days=1), Requester.system()
    )
    assert outcome.link_issued and outcome.link_sent


def test_the_cap_is_per_guest(uow: UnitOfWork) -> None:
    world = world_on(uow, Settings(request_interval=timedelta(0), max_links_per_hour=1))
    world.guests.request_inbox_link(ADA)
    world.guests.request_inbox_link(BOB)
    with pytest.raises(RateLimited):
        world.guests.request_inbox_link(ADA)


def test_none_disables_the_cap(uow: UnitOfWork) -> None:
    """§9.4: `max_links_per_hour=None`: only the request interval limits a guest."""
    world = world_on(uow, Settings(request_interval=timedelta(0), max_links_per_hour=None))
    issued = {world.guests.request_inbox_link(ADA).token_id for _ in range(12)}
    assert len(issued) == 12


def test_the_request_interval_still_applies_under_the_cap(uow: UnitOfWork) -> None:
    """The interval's own refusal keeps its message; the cap's refusal is a different one."""
    world = world_on(uow, Settings())
    world.guests.request_inbox_link(ADA)
    with pytest.raises(RateLimited) as refused:
        world.guests.request_inbox_link(ADA)
    assert str(refused.value) != HOURLY_CAP_MESSAGE
    assert str(refused.value) == RateLimited().message


@pytest.mark.parametrize("value", [0, -1, True, False, 1.5, "5", timedelta(hours=1)])
def test_a_bad_cap_is_refused_when_settings_are_built(value: object) -> None:
    """§9.4 / §9.6: a positive int or None, else `InvalidInput`."""
    with pytest.raises(InvalidInput, match="max_links_per_hour"):
        Settings(max_links_per_hour=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, 1, 5, 10_000])
def test_a_good_cap_is_kept(value: int | None) -> None:
    assert Settings(max_links_per_hour=value).max_links_per_hour == value


# ----------------------------------------------------------------------- constant statements


def _request_statements(engine: Engine, earlier: int, settings: Settings) -> list[str]:
    """The statements of one `request_inbox_link` by a guest who already has `earlier`
    inbox links this hour (and a booking, so that the guest row exists in every case)."""
    world = world_on(SqlAlchemyUnitOfWork(engine), settings)
    email = f"g{earlier}-{settings.max_links_per_hour}@example.com"
    world.book(email)
    for _ in range(earlier):
        world.guests.request_inbox_link(email)
    with count_statements(engine) as log:
        world.guests.request_inbox_link(email)
    return log.work


def test_the_cap_costs_one_select_whatever_the_number_of_earlier_links(
    any_engine: Engine,
) -> None:
    """§9.4 constant statements, on SQLite, PostgreSQL and MariaDB: a request by a guest with
    0 or 4 earlier links this hour sends the same statements; the cap is one SELECT COUNT
    more than without it — except on PostgreSQL, where without a cap the whole request is
    one statement (issue 15.1) and the cap's general path is taken instead."""
    capped = Settings(request_interval=timedelta(0))
    uncapped = Settings(request_interval=timedelta(0), max_links_per_hour=None)

    none_before = _request_statements(any_engine, 0, capped)
    four_before = _request_statements(any_engine, 4, capped)
    without_cap = _request_statements(any_engine, 4, uncapped)

    assert four_before == none_before
    [count] = [s for s in none_before if s.lstrip().upper().startswith("SELECT COUNT")]
    assert "magiclink_audit_log" in count
    if any_engine.dialect.name == "postgresql":
        [one] = without_cap
        assert one.lstrip().upper().startswith("WITH") and count not in without_cap
        return
    assert len(none_before) == len(without_cap) + 1
    assert [s for s in none_before if s not in without_cap] == [count]
