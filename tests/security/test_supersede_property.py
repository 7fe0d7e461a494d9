"""§5.8 as a hypothesis property: with supersede on, whatever the sequence of issues, each
(guest, booking) pair has at most one live link, and it is the newest one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magiclink import AuditAction, InvalidationReason, Settings
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, create_schema
from magiclink.ports import UnitOfWork
from tests.databases import sqlite_memory_engine
from tests.security.harness import Link, World

GUESTS = ("ada@example.com", "bob@example.com")
PATHS = ("book", "inbox", "inbox_for_booking", "system", "reschedule")
INTERVAL = Settings().request_interval
TTL = Settings().token_ttl


@attrs.frozen
class Issue:
    """One step: wait `wait` (at least the request interval), then issue by `path`."""

    guest: int
    path: str
    booking: int  # which of the guest's bookings (modulo how many it has)
    wait: timedelta


issues = st.builds(
    Issue,
    guest=st.integers(0, len(GUESTS) - 1),
    path=st.sampled_from(PATHS),
    booking=st.integers(0, 3),
    wait=st.timedeltas(min_value=INTERVAL, max_value=TTL + INTERVAL),
)


@contextmanager
def fresh_storage(kind: str) -> Iterator[UnitOfWork]:
    """Empty storage for one example (function-scoped fixtures are not reset between them)."""
    if kind == "memory":
        yield InMemoryUnitOfWork()
        return
    engine = sqlite_memory_engine()
    try:
        create_schema(engine)
        yield SqlAlchemyUnitOfWork(engine)
    finally:
        engine.dispose()


def apply(world: World, step: Issue, bookings: dict[str, list[int]]) -> tuple[Link, int | None]:
    """Run one step; the link it issued and the booking it is for (None: an inbox link)."""
    email = GUESTS[step.guest]
    owned = bookings[email]
    # `World.inbox` waits out the request interval itself; the system paths need not wait.
    world.clock.advance(step.wait - INTERVAL)
    if step.path not in ("inbox", "inbox_for_booking"):
        world.clock.advance(INTERVAL)
    if step.path == "book" or (step.path != "inbox" and not owned):
        booking, link = world.book_link(email)
        owned.append(booking.id)
        return link, booking.id
    if step.path == "inbox":
        return world.inbox(email), None
    booking_id = owned[step.booking % len(owned)]
    if step.path == "inbox_for_booking":
        return world.inbox(email, booking_id), booking_id
    if step.path == "system":
        return world.system(email, booking_id), booking_id
    return world.rescheduled(email, booking_id), booking_id


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=100)
@given(steps=st.lists(issues, min_size=1, max_size=12))
def test_property_supersede_leaves_at_most_the_newest_link_of_each_pair_live(
    kind: str, steps: list[Issue]
) -> None:
    """Property S1 (§5.8): after any sequence of issues — clock advances of at least the
    request interval, several bookings, several guests, every issuing path — each
    (guest, booking) pair has at most one live link, it is the newest, and it is live exactly
    while unexpired; every supersession is audited with its count."""
    with fresh_storage(kind) as uow:
        # The hourly cap (§9.4, 5 guest-initiated links by default) is tests/guestpath's
        # subject: left on, it refuses the 6th inbox link of an hour, which some sequences
        # here ask for (which ones hypothesis draws depends on the constants of the modules
        # a run has imported, so a larger run found one).
        world = World.over(uow, supersede_previous_links=True).redeployed(
            supersede_previous_links=True, max_links_per_hour=None
        )
        bookings: dict[str, list[int]] = defaultdict(list)
        pairs: dict[tuple[int, int | None], list[Link]] = defaultdict(list)
        for step in steps:
            link, booking_id = apply(world, step, bookings)
            pairs[(world.stored(link).guest_id, booking_id)].append(link)

        now = world.clock.now()
        superseded = 0
        for *earlier, newest in pairs.values():
            live = [link for link in (*earlier, newest) if world.is_live(link)]
            assert live == ([newest] if world.stored(newest).expires_at > now else [])
            if live:
                assert world.guests.verify_token(newest.raw).token.id == newest.token_id
            for link in earlier:
                token = world.stored(link)
                if token.invalidation_reason == InvalidationReason.SUPERSEDED:
                    superseded += 1
                else:  # it expired before a newer link came
                    assert not token.invalidated
                    assert token.expires_at <= world.stored(newest).created_at
        audited = sum(
            int(entry.metadata["count"])
            for entry in world.entries(AuditAction.INVALIDATE_TOKEN)
            if entry.metadata["reason"] == "superseded"
        )
        assert audited == superseded
