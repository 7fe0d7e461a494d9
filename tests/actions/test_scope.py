"""Booking scope of verify_token and consume_token (SPEC §9.1), on memory and every database."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from magiclink import (
    AccessDenied,
    AuditAction,
    AuditEntry,
    InvalidInput,
    Requester,
    TokenExpiredOrUsed,
)
from tests.unit.harness import STRANGER, STUDENT, Harness

MESSAGE = "This link is restricted to another session"
Operation = Callable[[Harness, str, int], object]


def _verify(world: Harness, raw: str, booking_id: int) -> object:
    return world.guests.verify_token(raw, booking_id=booking_id)


def _consume(world: Harness, raw: str, booking_id: int) -> object:
    return world.guests.consume_token(raw, booking_id=booking_id)


OPERATIONS = [pytest.param(_verify, id="verify"), pytest.param(_consume, id="consume")]


def _wrong_booking_audits(world: Harness) -> list[AuditEntry]:
    return [
        entry
        for entry in world.audit(AuditAction.VERIFY_TOKEN)
        if entry.metadata.get("reason") == "wrong_booking"
    ]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_r9_1_token_of_another_booking_is_refused_and_not_consumed(
    world: Harness, operation: Operation
) -> None:
    """§9.1: a booking-bound token names its booking only; nothing consumed, audited."""
    booking, raw = world.book()
    other, _ = world.book()
    with pytest.raises(AccessDenied) as refused:
        operation(world, raw, other.id)
    assert str(refused.value) == MESSAGE
    assert world.token(raw).used_at is None
    assert len(_wrong_booking_audits(world)) == 1
    assert world.guests.consume_token(raw, booking_id=booking.id).token.used_at is not None


@pytest.mark.parametrize("operation", OPERATIONS)
def test_r9_1_inbox_token_unknown_and_foreign_booking_look_the_same(
    world: Harness, operation: Operation
) -> None:
    """§9.1 (no enumeration): someone else's booking and a missing one give one answer."""
    foreign, _ = world.book(STRANGER)
    raw = world.inbox(STUDENT).raw
    answers = []
    for booking_id in (foreign.id, foreign.id + 1000):
        with pytest.raises(AccessDenied) as refused:
            operation(world, raw, booking_id)
        answers.append((type(refused.value), str(refused.value)))
    assert answers == [(AccessDenied, MESSAGE)] * 2
    assert world.token(raw).used_at is None
    assert len(_wrong_booking_audits(world)) == 2


@pytest.mark.parametrize("operation", OPERATIONS)
def test_r9_1_inbox_token_serves_a_booking_of_its_guest(
    world: Harness, operation: Operation
) -> None:
    """§9.1: an inbox token is accepted for a booking whose guest is the token's guest."""
    own, _ = world.book(STUDENT)
    raw = world.inbox(STUDENT).raw
    verified = operation(world, raw, own.id)
    assert verified is not None
    assert _wrong_booking_audits(world) == []


def test_r9_1_inbox_token_for_a_closed_booking_of_its_guest_is_refused(world: Harness) -> None:
    """§9.1 + R7 step 3: the booking checks apply to the named booking."""
    own, _ = world.book(STUDENT)
    raw = world.inbox(STUDENT).raw
    world.bookings.mark_session_as_no_show(own.id, Requester.system())
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(raw, booking_id=own.id)
    assert world.token(raw).used_at is None


def test_r9_1_own_booking_and_no_scope_still_accepted(world: Harness) -> None:
    """§9.1: `booking_id` of the token's own booking, or none, behaves as before (R7)."""
    booking, raw = world.book()
    assert world.guests.verify_token(raw, booking_id=booking.id).token.booking_id == booking.id
    assert world.guests.verify_token(raw).token.booking_id == booking.id


@pytest.mark.parametrize("bad", [0, -1, "1", True, 2**63])
def test_r9_1_malformed_booking_id_is_invalid_input(world: Harness, bad: object) -> None:
    """§9.1 / R10: a malformed booking_id is `InvalidInput` before storage is touched."""
    _, raw = world.book()
    with pytest.raises(InvalidInput):
        world.guests.consume_token(raw, booking_id=bad)  # type: ignore[arg-type]
    assert world.token(raw).used_at is None
