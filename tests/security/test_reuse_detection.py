"""§5.7 Reuse detection: a consumed link presented again is refused, audited, counted, logged,
and — with `Settings(revoke_on_reuse=True)` — revokes the guest's other live links for that
booking in the same transaction as its audit entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from magiclink import (
    AuditAction,
    BookingStatus,
    InvalidationReason,
    Requester,
    TokenExpiredOrUsed,
)
from magiclink.ports import UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from tests.security.harness import MENTOR, Link, World, field_values

ADA = "ada@example.com"
BOB = "bob@example.com"
OPERATIONS = ["verify", "consume"]


def present(world: World, link: Link, operation: str) -> None:
    """Present the link as the host would, expecting the reuse refusal."""
    check = world.guests.verify_token if operation == "verify" else world.guests.consume_token
    with pytest.raises(TokenExpiredOrUsed) as refused:
        check(link.raw)
    assert str(refused.value) == "Token expired or used"


def reuse_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "token.reuse_detected"]


class Scene:
    """Ada holds three links to booking A (one consumed), one to booking B and an inbox link;
    Bob holds a link to his own booking C."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.booking_a, self.consumed = world.book_link(ADA)
        self.sibling = world.inbox(ADA, self.booking_a.id)
        self.sibling_2 = world.system(ADA, self.booking_a.id)
        self.booking_b, self.other_booking = world.book_link(ADA)
        self.inbox = world.inbox(ADA)
        self.booking_c, self.other_guest = world.book_link(BOB)
        world.guests.consume_token(self.consumed.raw)
        # Past the double-click grace (§9.8): a presentation now is a reuse that revokes.
        world.clock.advance(world.settings.reuse_grace + timedelta(seconds=5))

    @property
    def untouched(self) -> list[Link]:
        return [self.other_booking, self.inbox, self.other_guest]


@pytest.mark.parametrize("revoke_on_reuse", [False, True], ids=["revoke-off", "revoke-on"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_reuse_is_refused_audited_counted_and_logged_without_the_raw_token(
    uow: UnitOfWork, operation: str, revoke_on_reuse: bool, caplog: pytest.LogCaptureFixture
) -> None:
    world = World.over(uow, revoke_on_reuse=revoke_on_reuse)
    booking, link = world.book_link(ADA)
    world.guests.consume_token(link.raw)
    assert world.entries(AuditAction.VERIFY_TOKEN) == []

    with caplog.at_level(logging.DEBUG, logger="magiclink"):
        present(world, link, operation)

    [entry] = world.entries(AuditAction.VERIFY_TOKEN)
    token = world.stored(link)
    assert entry.success is False
    assert entry.guest_id == token.guest_id
    assert entry.resource_id == str(booking.id)
    assert entry.metadata["reason"] == "used"
    assert entry.metadata["token_id"] == link.token_id
    assert entry.created_at == world.clock.now()
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []  # no other live link to revoke
    assert world.reuse_count(operation) == 1
    assert world.reuse_count() == 1
    [record] = reuse_records(caplog)
    assert record.name == "magiclink"
    assert record.levelno == logging.WARNING
    assert getattr(record, "token_id", None) == link.token_id
    assert f"token_id={link.token_id}" in record.getMessage()
    for record in caplog.records:
        assert not any(link.raw in str(value) for value in field_values(record))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_revoke_on_reuse_revokes_that_guests_live_links_for_that_booking_only(
    uow: UnitOfWork, operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = World.over(uow, revoke_on_reuse=True)
    scene = Scene(world)
    now = world.clock.now()

    with caplog.at_level(logging.INFO, logger="magiclink"):
        present(world, scene.consumed, operation)

    for sibling in (scene.sibling, scene.sibling_2):
        token = world.stored(sibling)
        assert token.invalidated
        assert token.invalidation_reason == InvalidationReason.REUSE_DETECTED
        assert token.used_at == now
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.verify_token(sibling.raw)
    for link in scene.untouched:
        assert world.is_live(link)
        assert world.guests.verify_token(link.raw).token.id == link.token_id
    consumed = world.stored(scene.consumed)
    assert not consumed.invalidated  # the presented link keeps its own, earlier consumption
    [revocation] = world.entries(AuditAction.INVALIDATE_TOKEN)
    assert revocation.guest_id == consumed.guest_id
    assert revocation.resource_id == str(scene.booking_a.id)
    assert revocation.success is True
    assert revocation.metadata["reason"] == "reuse_detected"
    assert revocation.metadata["count"] == 2
    assert revocation.created_at == now
    [record] = reuse_records(caplog)
    assert getattr(record, "count", None) == 2
    assert (
        world.metrics.count(
            "magiclink_invalidations_total", reason="reuse_detected", outcome="succeeded"
        )
        == 1
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_without_revoke_on_reuse_nothing_is_revoked(uow: UnitOfWork, operation: str) -> None:
    world = World.over(uow, revoke_on_reuse=False)
    scene = Scene(world)

    present(world, scene.consumed, operation)

    for link in (scene.sibling, scene.sibling_2, *scene.untouched):
        assert world.is_live(link)
        world.guests.verify_token(link.raw)
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []
    assert world.reuse_count(operation) == 1


def test_reuse_of_an_inbox_link_revokes_only_the_guests_other_inbox_links(
    uow: UnitOfWork,
) -> None:
    world = World.over(uow, revoke_on_reuse=True)
    booking, booking_link = world.book_link(ADA)
    consumed = world.inbox(ADA)
    other_inbox = world.inbox(ADA)
    bobs_inbox = world.inbox(BOB)
    world.guests.consume_token(consumed.raw)
    world.clock.advance(world.settings.reuse_grace)  # the grace is over (§9.8)

    present(world, consumed, "consume")

    assert world.stored(other_inbox).invalidation_reason == InvalidationReason.REUSE_DETECTED
    assert world.is_live(booking_link)
    assert world.is_live(bobs_inbox)
    [revocation] = world.entries(AuditAction.INVALIDATE_TOKEN)
    assert revocation.resource_id is None
    assert revocation.metadata == {"reason": "reuse_detected", "count": 1}
    assert world.guests.tokens_for_booking(booking.id) == [world.stored(booking_link)]


def test_a_second_reuse_is_audited_again_but_revokes_nothing_more(uow: UnitOfWork) -> None:
    world = World.over(uow, revoke_on_reuse=True)
    scene = Scene(world)
    present(world, scene.consumed, "verify")
    world.clock.advance(timedelta(seconds=1))

    present(world, scene.consumed, "consume")

    assert len(world.entries(AuditAction.VERIFY_TOKEN, booking_id=scene.booking_a.id)) == 2
    assert len(world.entries(AuditAction.INVALIDATE_TOKEN)) == 1
    assert world.reuse_count() == 2
    assert world.stored(scene.sibling).used_at == world.clock.now() - timedelta(seconds=1)


def invalidated(world: World) -> Link:
    booking, link = world.book_link(ADA)
    world.bookings.cancel_session(booking.id, "ill", "mentor", Requester(user_id=MENTOR))
    return link


def expired(world: World) -> Link:
    _, link = world.book_link(ADA)
    world.clock.advance(world.settings.token_ttl)
    return link


def moved(world: World) -> Link:
    booking, link = world.book_link(ADA)
    world.bookings.reschedule_session(
        booking.id, booking.start_time + timedelta(days=1), Requester.system()
    )
    return link


@pytest.mark.parametrize(
    ("make", "reason"),
    [(invalidated, "invalidated"), (expired, "expired"), (moved, "invalidated")],
    ids=["invalidated", "expired", "rescheduled"],
)
def test_only_a_consumed_link_counts_as_reuse(
    uow: UnitOfWork,
    make: Callable[[World], Link],
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World.over(uow, revoke_on_reuse=True)
    link = make(world)
    sibling = world.inbox(ADA)  # a live inbox link: must survive every non-reuse refusal
    before = len(world.entries(AuditAction.INVALIDATE_TOKEN))

    with caplog.at_level(logging.INFO, logger="magiclink"):
        present(world, link, "consume")

    [entry] = world.entries(AuditAction.VERIFY_TOKEN)
    assert entry.metadata["reason"] == reason
    assert world.reuse_count() == 0
    assert reuse_records(caplog) == []
    assert len(world.entries(AuditAction.INVALIDATE_TOKEN)) == before
    assert world.is_live(sibling)


def test_a_cancelled_booking_does_not_hide_reuse_behind_its_booking_check(
    uow: UnitOfWork,
) -> None:
    """A consumed link of a booking whose invalidation never ran is still a reuse (step 3
    checks the token's own state before its booking's)."""
    world = World.over(uow, revoke_on_reuse=False)
    booking, link = world.book_link(ADA)
    world.guests.consume_token(link.raw)
    with world.uow.transaction() as tx:  # the booking closes but its links are left alone
        tx.bookings.update(attrs.evolve(booking, status=BookingStatus.CANCELLED))
        tx.commit()

    present(world, link, "verify")

    [entry] = world.entries(AuditAction.VERIFY_TOKEN)
    assert entry.metadata["reason"] == "used"
    assert world.reuse_count() == 1


@pytest.mark.parametrize("operation", OPERATIONS)
def test_revocation_and_its_audit_entries_land_together_or_not_at_all(
    uow: UnitOfWork, operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyUnitOfWork(uow)
    world = World.over(faulty, revoke_on_reuse=True)
    scene = Scene(world)
    caplog.clear()
    faulty.arm(1, match="audit.add_many")  # the refusal's batched audit INSERT fails

    with caplog.at_level(logging.ERROR, logger="magiclink"):
        present(world, scene.consumed, operation)  # fail closed: the refusal stands

    assert world.is_live(scene.sibling)
    assert world.is_live(scene.sibling_2)
    assert world.entries(AuditAction.VERIFY_TOKEN) == []
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [getattr(r, "event", None) for r in errors] == ["audit.write_failed"]

    assert faulty.failures == ["audit.add_many"]
    assert "tokens.invalidate_live" in faulty.calls  # it ran, and was rolled back
    faulty.disarm()
    present(world, scene.consumed, operation)  # storage back: the next reuse revokes

    assert not world.is_live(scene.sibling)
    assert len(world.entries(AuditAction.INVALIDATE_TOKEN)) == 1


# --------------------------------------------------------------- §9.8 the double-click grace


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_presentation_within_the_grace_is_refused_and_audited_but_revokes_nothing(
    uow: UnitOfWork, operation: str
) -> None:
    """§9.8: with `revoke_on_reuse`, a link presented again less than `reuse_grace` after
    its consumption is a double click: refused, audited `used`, counted, nothing revoked."""
    world = World.over(uow, revoke_on_reuse=True)
    booking, link = world.book_link(ADA)
    sibling = world.system(ADA, booking.id)
    world.guests.consume_token(link.raw)
    world.clock.advance(world.settings.reuse_grace - timedelta(microseconds=1))

    present(world, link, operation)

    assert world.is_live(sibling)
    [entry] = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking.id)
    assert entry.success is False
    assert entry.metadata["reason"] == "used"
    assert entry.metadata["within_grace"] is True
    assert world.entries(AuditAction.INVALIDATE_TOKEN) == []
    assert world.reuse_count(operation) == 1
    assert (
        world.metrics.count(
            "magiclink_invalidations_total", reason="reuse_detected", outcome="succeeded"
        )
        == 0
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_once_the_grace_is_over_a_reuse_revokes_as_before(uow: UnitOfWork, operation: str) -> None:
    """§9.8: at `reuse_grace` after the consumption (not less) the revocation of §5.7 applies,
    even after double clicks within the grace."""
    world = World.over(uow, revoke_on_reuse=True)
    booking, link = world.book_link(ADA)
    sibling = world.system(ADA, booking.id)
    world.guests.consume_token(link.raw)
    present(world, link, operation)  # the double click
    world.clock.advance(world.settings.reuse_grace)

    present(world, link, operation)

    assert world.stored(sibling).invalidation_reason == InvalidationReason.REUSE_DETECTED
    [revocation] = world.entries(AuditAction.INVALIDATE_TOKEN)
    assert revocation.metadata == {"reason": "reuse_detected", "count": 1}
    refusals = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking.id)
    assert [e.metadata.get("within_grace") for e in refusals] == [None, True]  # newest first


def test_a_zero_grace_revokes_on_the_first_reuse(uow: UnitOfWork) -> None:
    """§9.8: `reuse_grace=timedelta(0)` restores the immediate revocation of §5.7."""
    world = World.over(uow).redeployed(revoke_on_reuse=True, reuse_grace=timedelta(0))
    booking, link = world.book_link(ADA)
    sibling = world.system(ADA, booking.id)
    world.guests.consume_token(link.raw)

    present(world, link, "consume")

    assert world.stored(sibling).invalidation_reason == InvalidationReason.REUSE_DETECTED
    [entry] = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking.id)
    assert "within_grace" not in entry.metadata


def test_without_revoke_on_reuse_the_grace_changes_nothing(uow: UnitOfWork) -> None:
    """The grace only spares a revocation; without `revoke_on_reuse` there is none to spare,
    and the refusal's audit entry is the same as before (no `within_grace`)."""
    world = World.over(uow, revoke_on_reuse=False)
    booking, link = world.book_link(ADA)
    world.guests.consume_token(link.raw)

    present(world, link, "verify")

    [entry] = world.entries(AuditAction.VERIFY_TOKEN, booking_id=booking.id)
    assert entry.metadata == {"reason": "used", "token_id": link.token_id, "operation": "verify"}
