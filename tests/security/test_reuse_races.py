"""§5.7 under real concurrency (PostgreSQL): racing presentations of one consumed link revoke
the guest's other links once — one `reuse_detected` entry, never a duplicate — once the
double-click grace (§9.8) is over; racing redemptions of a live link revoke nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from magiclink import AuditAction, InvalidationReason, MagicLinkError, TokenExpiredOrUsed
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from tests.security.harness import Link, World

pytestmark = pytest.mark.postgres

ROUNDS = 5
RACERS = 8
SIBLINGS = 3


def race(racers: int, present: Callable[[int], object]) -> list[object | MagicLinkError]:
    """Run `present(i)` in `racers` threads released together; each result or error."""
    barrier = threading.Barrier(racers)

    def run(i: int) -> object | MagicLinkError:
        barrier.wait()
        try:
            return present(i)
        except MagicLinkError as error:
            return error

    with ThreadPoolExecutor(max_workers=racers) as pool:
        return list(pool.map(run, range(racers)))


def booking_with_siblings(world: World, email: str) -> tuple[int, Link, list[Link]]:
    booking, first = world.book_link(email)
    siblings = [world.system(email, booking.id) for _ in range(SIBLINGS)]
    return booking.id, first, siblings


def assert_revoked_once(world: World, booking_id: int, siblings: list[Link]) -> None:
    [revocation] = world.entries(AuditAction.INVALIDATE_TOKEN, booking_id=booking_id)
    assert revocation.metadata["reason"] == "reuse_detected"
    assert revocation.metadata["count"] == SIBLINGS
    for sibling in siblings:
        assert world.stored(sibling).invalidation_reason == InvalidationReason.REUSE_DETECTED


def reuse_round(world: World, email: str) -> None:
    """Half the racers verify, half consume one already-consumed link."""
    booking_id, consumed, siblings = booking_with_siblings(world, email)
    world.guests.consume_token(consumed.raw)
    world.clock.advance(world.settings.reuse_grace)  # a reuse, not a double click (§9.8)
    checks = (world.guests.verify_token, world.guests.consume_token)

    results = race(RACERS, lambda i: checks[i % 2](consumed.raw))

    assert all(isinstance(r, TokenExpiredOrUsed) for r in results), results
    refusals = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking_id)
    assert len(refusals) == RACERS
    assert {e.metadata["reason"] for e in refusals} == {"used"}
    assert_revoked_once(world, booking_id, siblings)


def test_racing_reuses_of_a_consumed_link_revoke_once(postgres_engine: Engine) -> None:
    world = World.over(SqlAlchemyUnitOfWork(postgres_engine), revoke_on_reuse=True)
    for round_ in range(ROUNDS):
        reuse_round(world, f"r{round_}@example.com")
    assert world.reuse_count() == ROUNDS * RACERS
    assert (
        world.metrics.count(
            "magiclink_invalidations_total", reason="reuse_detected", outcome="succeeded"
        )
        == ROUNDS
    )


def redemption_round(world: World, email: str) -> None:
    """Every racer consumes one live link."""
    booking_id, link, siblings = booking_with_siblings(world, email)

    results = race(RACERS, lambda _: world.guests.consume_token(link.raw))

    winners = [r for r in results if not isinstance(r, MagicLinkError)]
    assert len(winners) == 1, results
    assert sum(isinstance(r, TokenExpiredOrUsed) for r in results) == RACERS - 1
    token = world.stored(link)
    assert token.used_at is not None
    assert not token.invalidated
    refusals = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking_id)
    assert len(refusals) == RACERS - 1
    assert {e.metadata["reason"] for e in refusals} == {"used"}
    assert {e.metadata.get("within_grace") for e in refusals} == {True}
    assert world.entries(AuditAction.INVALIDATE_TOKEN, booking_id=booking_id) == []
    for sibling in siblings:
        assert world.is_live(sibling)


def test_racing_redemptions_have_one_winner_and_revoke_nothing(postgres_engine: Engine) -> None:
    """§9.8: with `revoke_on_reuse`, racing redemptions of one link are a double click, not
    theft: one winner, the losers refused and audited `used` within the grace, and none of the
    guest's other links of the booking is revoked; the winner's consumption stands."""
    world = World.over(SqlAlchemyUnitOfWork(postgres_engine), revoke_on_reuse=True)
    for round_ in range(ROUNDS):
        redemption_round(world, f"d{round_}@example.com")
