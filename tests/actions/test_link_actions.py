"""The four link actions (SPEC §8.1) and refusals that change nothing (§8.2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from magiclink import (
    AccessDenied,
    AuditAction,
    BookingClosed,
    BookingStatus,
    DuplicateRating,
    InvalidInput,
    InvalidToken,
    TokenExpiredOrUsed,
)
from tests.unit.harness import STRANGER, STUDENT, Harness

Action = Callable[[Harness, str, int | None], object]


def _cancel(world: Harness, raw: str, booking_id: int | None) -> object:
    return world.bookings.cancel_with_link(raw, "sick", booking_id=booking_id)


def _reschedule(world: Harness, raw: str, booking_id: int | None) -> object:
    start = world.clock.now() + timedelta(days=3)
    return world.bookings.reschedule_with_link(raw, start, booking_id=booking_id)


def _rate(world: Harness, raw: str, booking_id: int | None) -> object:
    return world.ratings.rate_with_link(raw, 5, "great", booking_id=booking_id)


def _report(world: Harness, raw: str, booking_id: int | None) -> object:
    return world.quality.report_with_link(raw, "late", "10 min", booking_id=booking_id)


def _state(world: Harness, booking_id: int, *, audit: bool = True) -> tuple[object, ...]:
    """What storage holds about the booking: the booking, its tokens and its audit entries."""
    entries = world.guests.audit_trail(booking_id=booking_id, limit=1000) if audit else []
    return (world.booking(booking_id), world.guests.tokens_for_booking(booking_id), entries)


ACTIONS = [
    pytest.param(_cancel, id="cancel"),
    pytest.param(_reschedule, id="reschedule"),
    pytest.param(_rate, id="rate"),
    pytest.param(_report, id="report"),
]


@pytest.mark.parametrize("action", ACTIONS)
def test_r8_1_action_consumes_the_link_and_kills_every_link_of_the_booking(
    world: Harness, action: Action
) -> None:
    """§8.1: one transaction consumes the link, acts, kills the other links, audits."""
    booking, raw = world.book()
    other = world.inbox(STUDENT, booking.id).raw
    action(world, raw, None)
    assert world.token(raw).used_at is not None
    assert world.token(other).invalidated
    consumed = world.audit(AuditAction.CONSUME_TOKEN, booking_id=booking.id)
    assert [entry.metadata["token_id"] for entry in consumed] == [world.token(raw).id]
    assert world.audit(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id)
    for dead in (raw, other):
        with pytest.raises(TokenExpiredOrUsed):
            world.guests.verify_token(dead)


def test_r8_1_each_action_stores_its_effect(world: Harness) -> None:
    """§8.1: cancel (by the student), reschedule (+ one new link mailed, R2), rate, report."""
    booking, raw = world.book()
    assert world.bookings.cancel_with_link(raw, "sick").status is BookingStatus.CANCELLED
    booking, raw = world.book()
    outcome = world.bookings.reschedule_with_link(raw, world.clock.now() + timedelta(days=2))
    assert outcome.booking.revision == 1 and outcome.link_issued and outcome.link_sent
    assert world.sent[-1].kind == "reschedule"
    _, raw = world.book()
    assert world.ratings.rate_with_link(raw, 4).rating == 4
    booking, raw = world.book()
    incident = world.quality.report_with_link(raw, "late", "x")
    assert (incident.booking_id, incident.booking_uid) == (booking.id, booking.uid)


@pytest.mark.parametrize("action", ACTIONS)
def test_r8_2_refused_link_writes_only_verify_token(world: Harness, action: Action) -> None:
    """§8.2: a used link is refused with TokenExpiredOrUsed and writes only VERIFY_TOKEN."""
    booking, raw = world.book()
    world.guests.consume_token(raw)
    before = _state(world, booking.id, audit=False)
    entries = len(world.guests.audit_trail(booking_id=booking.id))
    with pytest.raises(TokenExpiredOrUsed):
        action(world, raw, None)
    assert _state(world, booking.id, audit=False) == before
    assert len(world.guests.audit_trail(booking_id=booking.id)) == entries + 1
    assert world.verify_audits()[-1].metadata["reason"] == "used"


@pytest.mark.parametrize("action", ACTIONS)
def test_r9_1_link_of_another_booking_is_refused_and_still_works(
    world: Harness, action: Action
) -> None:
    """§9.1 in a link action: AccessDenied, nothing consumed, the link still acts."""
    booking, raw = world.book()
    other, _ = world.book()
    with pytest.raises(AccessDenied, match="This link is restricted to another session"):
        action(world, raw, other.id)
    assert world.token(raw).used_at is None
    action(world, raw, booking.id)


@pytest.mark.parametrize("action", ACTIONS)
def test_r9_1_inbox_link_needs_a_booking_of_its_guest(world: Harness, action: Action) -> None:
    """§9.1: an inbox link without booking_id is InvalidInput; another's booking is refused."""
    own, _ = world.book(STUDENT)
    foreign, _ = world.book(STRANGER)
    raw = world.inbox(STUDENT).raw
    with pytest.raises(InvalidInput):
        action(world, raw, None)
    with pytest.raises(AccessDenied):
        action(world, raw, foreign.id)
    assert world.token(raw).used_at is None
    action(world, raw, own.id)
    assert world.token(raw).used_at is not None


def test_r8_2_refused_rating_leaves_the_link_usable(world: Harness) -> None:
    """§8.2: feedback too long and a duplicate rating write nothing; the link still rates."""
    booking, raw = world.book()
    before = _state(world, booking.id)
    with pytest.raises(InvalidInput):
        world.ratings.rate_with_link(raw, 5, "x" * 2_001)
    with pytest.raises(InvalidInput):
        world.ratings.rate_with_link(raw, 6)
    assert _state(world, booking.id) == before
    assert world.ratings.rate_with_link(raw, 5).rating == 5


def test_r8_2_duplicate_rating_through_an_inbox_link_changes_nothing(world: Harness) -> None:
    """§8.2: DuplicateRating rolls back the consume; the inbox link still works."""
    booking, _ = world.book(STUDENT)
    raw = world.inbox(STUDENT).raw
    world.ratings.create_rating(booking.id, "p", 3)
    before = _state(world, booking.id)
    with pytest.raises(DuplicateRating):
        world.ratings.rate_with_link(raw, 5, booking_id=booking.id)
    assert _state(world, booking.id) == before
    assert world.guests.verify_token(raw).token.used_at is None


def test_r8_2_closed_booking_refuses_the_inbox_link_action(world: Harness) -> None:
    """§8.2 + R7 step 3: an inbox link for a cancelled booking is refused, not consumed."""
    booking, raw_booking = world.book(STUDENT)
    raw = world.inbox(STUDENT).raw
    world.bookings.cancel_with_link(raw_booking, "")
    with pytest.raises((TokenExpiredOrUsed, BookingClosed)):
        world.ratings.rate_with_link(raw, 5, booking_id=booking.id)
    assert world.token(raw).used_at is None


def test_r8_1_malformed_and_unknown_tokens(world: Harness) -> None:
    """§8.1 / R7: malformed or unknown links are InvalidToken, writing nothing."""
    booking, _ = world.book()
    before = _state(world, booking.id)
    for raw in ("nope", "0" * 64):
        with pytest.raises(InvalidToken):
            world.bookings.cancel_with_link(raw, "")
    assert _state(world, booking.id) == before
