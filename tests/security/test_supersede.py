"""§5.8 Supersede: with `Settings(supersede_previous_links=True)` every issue revokes the
(guest, booking) pair's earlier live links in its own transaction; off (the default), earlier
links keep working (R6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from magiclink import (
    AuditAction,
    InvalidationReason,
    Requester,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.ports import UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.security.harness import Link, World

ADA = "ada@example.com"
BOB = "bob@example.com"

Issue = Callable[[World, str, int], Link]
PATHS: dict[str, Issue] = {
    "request_inbox_link": lambda world, email, booking_id: world.inbox(email, booking_id),
    "issue_booking_link": lambda world, email, booking_id: world.system(email, booking_id),
    "generate_token_for_rescheduled_booking": (
        lambda world, email, booking_id: world.rescheduled(email, booking_id)
    ),
}


def assert_superseded(world: World, link: Link) -> None:
    token = world.stored(link)
    assert token.invalidated
    assert token.invalidation_reason == InvalidationReason.SUPERSEDED
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(link.raw)


def supersessions(world: World, **where: int) -> list[dict[str, object]]:
    return [
        dict(entry.metadata)
        for entry in world.entries(AuditAction.INVALIDATE_TOKEN, **where)
        if entry.metadata["reason"] == "superseded"
    ]


@pytest.mark.parametrize("path", PATHS)
def test_every_issue_for_a_booking_supersedes_the_pairs_earlier_live_links(
    uow: UnitOfWork, path: str
) -> None:
    world = World.over(uow, supersede_previous_links=True)
    booking, first = world.book_link(ADA)  # via issue_booking_link: nothing earlier to supersede
    assert supersessions(world) == []
    second = world.inbox(ADA, booking.id)
    assert_superseded(world, first)
    world.clock.advance(timedelta(seconds=1))

    newest = PATHS[path](world, ADA, booking.id)

    assert_superseded(world, second)
    assert world.stored(second).used_at == world.clock.now()
    assert world.guests.verify_token(newest.raw).token.id == newest.token_id
    latest, earlier = world.entries(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id)
    assert latest.metadata == {"reason": "superseded", "count": 1}
    assert latest.guest_id == world.stored(newest).guest_id
    assert latest.resource_id == str(booking.id)
    assert latest.success is True
    assert latest.created_at == world.clock.now()
    assert earlier.metadata == {"reason": "superseded", "count": 1}


def test_one_issue_supersedes_all_earlier_live_links_of_the_pair_in_one_entry(
    uow: UnitOfWork,
) -> None:
    world = World.over(uow, supersede_previous_links=False)
    booking, first = world.book_link(ADA)
    earlier = [first, *(world.system(ADA, booking.id) for _ in range(3))]
    world_on = world.redeployed(supersede_previous_links=True)

    newest = world_on.rescheduled(ADA, booking.id)

    for link in earlier:
        assert_superseded(world_on, link)
    assert world_on.is_live(newest)
    assert supersessions(world_on, booking_id=booking.id) == [{"reason": "superseded", "count": 4}]


def test_an_inbox_link_without_booking_supersedes_only_the_guests_inbox_links(
    uow: UnitOfWork,
) -> None:
    world = World.over(uow, supersede_previous_links=True)
    booking, booking_link = world.book_link(ADA)
    first = world.inbox(ADA)
    bobs = world.inbox(BOB)

    second = world.inbox(ADA)

    assert_superseded(world, first)
    assert world.is_live(second)
    assert world.is_live(booking_link)
    assert world.is_live(bobs)
    [entry] = [
        e
        for e in world.entries(AuditAction.INVALIDATE_TOKEN)
        if e.metadata["reason"] == "superseded"
    ]
    assert entry.resource_id is None
    assert entry.guest_id == world.stored(second).guest_id
    assert entry.metadata == {"reason": "superseded", "count": 1}
    assert world.guests.tokens_for_booking(booking.id) == [world.stored(booking_link)]


def test_a_booking_link_does_not_supersede_other_bookings_guests_or_inbox_links(
    uow: UnitOfWork,
) -> None:
    world = World.over(uow, supersede_previous_links=True)
    _, ada_first = world.book_link(ADA)
    ada_inbox = world.inbox(ADA)
    _, bobs = world.book_link(BOB)

    _, ada_second = world.book_link(ADA)

    for link in (ada_first, ada_inbox, bobs, ada_second):
        assert world.is_live(link)
    assert supersessions(world) == []


def test_supersede_leaves_consumed_expired_and_invalidated_links_as_they_were(
    uow: UnitOfWork,
) -> None:
    world = World.over(uow, supersede_previous_links=False)
    booking, consumed = world.book_link(ADA)
    world.guests.consume_token(consumed.raw)
    expired = world.system(ADA, booking.id)
    world.clock.advance(world.settings.token_ttl)
    revoked = world.system(ADA, booking.id)
    assert revoked.token_id is not None
    world.guests.invalidate_token(revoked.token_id, InvalidationReason.MANUAL_REVOCATION)
    before = {link.token_id: world.stored(link) for link in (consumed, expired, revoked)}
    world_on = world.redeployed(supersede_previous_links=True)

    world_on.system(ADA, booking.id)

    assert {link.token_id: world_on.stored(link) for link in (consumed, expired, revoked)} == before
    assert supersessions(world_on) == []


def test_rescheduling_kills_old_links_as_rescheduled_and_mails_the_only_live_one(
    uow: UnitOfWork,
) -> None:
    """Invalidation runs before the re-issue, so nothing is left for supersede to count."""
    world = World.over(uow, supersede_previous_links=True)
    booking, first = world.book_link(ADA)

    outcome = world.bookings.reschedule_session(
        booking.id, booking.start_time + timedelta(hours=1), Requester.system()
    )

    assert outcome.link_issued and outcome.link_sent
    assert world.stored(first).invalidation_reason == InvalidationReason.BOOKING_RESCHEDULED
    fresh = world.last_mailed(booking.id)
    assert [t.id for t in world.guests.tokens_for_booking(booking.id) if not t.invalidated] == [
        fresh.token_id
    ]
    assert supersessions(world) == []


@pytest.mark.parametrize("path", PATHS)
def test_supersede_and_the_new_link_land_together_or_not_at_all(uow: UnitOfWork, path: str) -> None:
    faulty = FaultyUnitOfWork(uow)
    world = World.over(faulty, supersede_previous_links=True)
    booking, first = world.book_link(ADA)
    faulty.arm(1, match="audit.add_many")  # the issue's batched audit INSERT fails

    with pytest.raises(StorageError):
        PATHS[path](world, ADA, booking.id)
    faulty.disarm()

    assert faulty.failures == ["audit.add_many"]
    assert "tokens.invalidate_live" in faulty.calls  # it ran, and was rolled back
    assert world.is_live(first)
    assert [t.id for t in world.guests.tokens_for_booking(booking.id)] == [first.token_id]
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []


@pytest.mark.parametrize("path", PATHS)
def test_by_default_earlier_links_keep_working(uow: UnitOfWork, path: str) -> None:
    world = World.over(uow)
    assert world.settings.supersede_previous_links is False
    booking, first = world.book_link(ADA)
    inbox = world.inbox(ADA)
    second = world.inbox(ADA, booking.id)

    third = PATHS[path](world, ADA, booking.id)
    fourth = world.inbox(ADA)

    for link in (first, inbox, second, third, fourth):
        assert world.guests.verify_token(link.raw).token.id == link.token_id
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []
