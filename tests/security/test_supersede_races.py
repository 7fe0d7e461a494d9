"""§5.8 under real concurrency (PostgreSQL): links issued at the same moment for one
(guest, booking) pair must still leave only one of them live."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from magiclink import AuditAction, InvalidationReason, MagicLinkError
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from tests.security.harness import World
from tests.security.test_reuse_races import race

pytestmark = pytest.mark.postgres

ROUNDS = 5
RACERS = 6


def issue_round(world: World, email: str) -> None:
    """Half the racers take the booking path, half the reschedule path, for one pair."""
    booking, _ = world.book_link(email)
    paths = (world.guests.issue_booking_link, world.guests.generate_token_for_rescheduled_booking)

    results = race(RACERS, lambda i: paths[i % 2](email, booking.id))

    assert not [r for r in results if isinstance(r, MagicLinkError)], results
    tokens = world.guests.tokens_for_booking(booking.id)
    assert len(tokens) == RACERS + 1
    live = [t for t in tokens if not t.invalidated]
    assert len(live) == 1, f"{len(live)} live links for one pair"
    superseded = [t for t in tokens if t.invalidation_reason == InvalidationReason.SUPERSEDED]
    assert len(superseded) == RACERS
    entries = world.entries(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id)
    assert sum(int(e.metadata["count"]) for e in entries) == RACERS


def test_racing_issues_for_one_pair_leave_one_live_link(postgres_engine: Engine) -> None:
    world = World.over(SqlAlchemyUnitOfWork(postgres_engine), supersede_previous_links=True)
    for round_ in range(ROUNDS):
        issue_round(world, f"s{round_}@example.com")
