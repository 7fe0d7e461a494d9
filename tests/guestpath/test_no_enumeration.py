"""§9.5 No enumeration on the guest path: `request_inbox_link(email, booking_id)` answers an
unknown booking and a booking of another e-mail alike — the same `AccessDenied("Access
denied")` after the same statements. Operator and system paths keep `BookingNotFound`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from magiclink import AccessDenied, BookingNotFound, MagicLinkError, Requester
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.ports import UnitOfWork
from magiclink.testing import World
from tests.databases import count_statements
from tests.guestpath.harness import ADA, BOB, world_on

UNKNOWN_BOOKING = 987_654


def refusal(call: Callable[[], object]) -> MagicLinkError:
    with pytest.raises(MagicLinkError) as refused:
        call()
    return refused.value


def test_an_unknown_booking_and_another_guests_booking_give_the_same_answer(
    uow: UnitOfWork,
) -> None:
    """§9.5: same class, code and message; neither writes anything."""
    world = world_on(uow)
    bobs, _ = world.book(BOB)
    world.book(ADA)  # Ada is a known guest too: the answer must not depend on that either
    before = (world.audit(), world.guests.token_stats(), world.guests.get_guest(ADA))

    unknown = refusal(lambda: world.guests.request_inbox_link(ADA, UNKNOWN_BOOKING))
    foreign = refusal(lambda: world.guests.request_inbox_link(ADA, bobs.id))
    stranger = refusal(lambda: world.guests.request_inbox_link("cy@example.com", bobs.id))

    for error in (unknown, foreign, stranger):
        assert type(error) is AccessDenied
        assert (error.code, str(error)) == ("FORBIDDEN", "Access denied")
    assert (world.audit(), world.guests.token_stats(), world.guests.get_guest(ADA)) == before
    assert world.guests.get_guest("cy@example.com") is None


def test_operator_and_system_paths_keep_booking_not_found(uow: UnitOfWork) -> None:
    """§9.5: only the guest path hides which bookings exist."""
    world = world_on(uow)
    world.book(ADA)
    calls: list[Callable[[], object]] = [
        lambda: world.guests.issue_booking_link(ADA, UNKNOWN_BOOKING),
        lambda: world.guests.generate_token_for_rescheduled_booking(ADA, UNKNOWN_BOOKING),
        lambda: world.bookings.cancel_session(UNKNOWN_BOOKING, "ill", "mentor", Requester.system()),
        lambda: world.bookings.mark_session_as_no_show(UNKNOWN_BOOKING, Requester.system()),
    ]
    for call in calls:
        assert type(refusal(call)) is BookingNotFound


def _refusal_statements(engine: Engine, world: World, booking_id: int) -> list[str]:
    with count_statements(engine) as log, pytest.raises(AccessDenied):
        world.guests.request_inbox_link(ADA, booking_id)
    return log.work


@pytest.mark.parametrize("known_guest", [True, False], ids=["known-guest", "new-address"])
def test_both_refusals_send_the_same_statements(any_engine: Engine, known_guest: bool) -> None:
    """§9.5 on SQLite, PostgreSQL and MariaDB: the refusal of an unknown booking and of
    another guest's booking send the same statements (count and text), for a known guest
    and for an address never seen."""
    world = world_on(SqlAlchemyUnitOfWork(any_engine))
    bobs, _ = world.book(BOB)
    if known_guest:
        world.book(ADA)

    unknown = _refusal_statements(any_engine, world, UNKNOWN_BOOKING)
    foreign = _refusal_statements(any_engine, world, bobs.id)

    assert unknown == foreign
    assert len(unknown) == 2  # the guest by e-mail, the booking (locked)
