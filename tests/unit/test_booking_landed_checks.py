"""Every `landed` check of a booking write is exact (R9.4, issue 12.2).

The booking writes (book, cancel, no-show, complete, reschedule) store their operation id on
the booking row itself (`Booking.operation_id`, revision 0007): their checks read the row by
id (or uid) and claim it only when it carries their own id, where the old checks asked only
for a coincidence (the status, the uid with its mentor and start, an equal row). Each is
proven both ways: after a commit that landed (`AckLost`) the call returns once, with no
second effect; after one that did not (`CommitFailsThen`), a twin's same-looking change is
not claimed, and the call runs again into its proper answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from magiclink import (
    AuditAction,
    Booking,
    BookingClosed,
    BookingStatus,
    InvalidInput,
    Requester,
    TokenExpiredOrUsed,
)
from magiclink.testing.world import MENTOR_ID, World
from tests.unit.ambiguous_commits import lost_ack, worlds

MENTOR = Requester(user_id=MENTOR_ID)
UID = "booking-uid-1"


def _invalidations(world: World, booking: Booking) -> int:
    return len(world.audit(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id))


def test_book_session_landed_returns_the_booking_once() -> None:
    """R9.4, issue 12.2: `book_session` whose commit landed but lost its acknowledgement
    finds its booking by uid carrying its operation id: no `InvalidInput` for its own uid,
    one booking, one link mailed."""
    losing, world = lost_ack()
    start = world.clock.now() + timedelta(days=1)
    losing.armed = True
    outcome = world.bookings.book_session(MENTOR_ID, "ada@example.com", start, uid=UID)
    assert losing.lost == 1
    assert outcome.link_sent
    assert world.booking(outcome.booking.id) == outcome.booking
    assert outcome.booking.operation_id is not None
    assert len(world.sent) == 1
    assert len(world.guests.tokens_for_booking(outcome.booking.id)) == 1


def test_book_session_not_landed_is_not_fooled_by_a_twin_booking_of_its_uid() -> None:
    """R9.4, issue 12.2: another caller booked the same uid, mentor and start (what the old
    check compared) while this call's commit failed: that booking is not this call's; the
    call runs again and meets the duplicate uid (`InvalidInput`), mailing nothing."""
    failing, world, other = worlds()
    start = world.clock.now() + timedelta(days=1)
    failing.armed = True
    failing.then = lambda: other.bookings.book_session(MENTOR_ID, "ada@example.com", start, uid=UID)
    with pytest.raises(InvalidInput):
        world.bookings.book_session(MENTOR_ID, "ada@example.com", start, uid=UID)
    assert failing.failed == 1
    assert world.sent == []


CloseCall = Callable[[World, int], Booking]
CLOSING: list[tuple[str, BookingStatus, CloseCall]] = [
    (
        "cancel",
        BookingStatus.CANCELLED,
        lambda w, booking_id: w.bookings.cancel_session(booking_id, "ill", "mentor", MENTOR),
    ),
    (
        "no_show",
        BookingStatus.NO_SHOW,
        lambda w, booking_id: w.bookings.mark_session_as_no_show(booking_id, MENTOR),
    ),
]


@pytest.mark.parametrize(("name", "status", "close"), CLOSING, ids=[c[0] for c in CLOSING])
def test_closing_landed_returns_the_closed_booking_once(
    name: str, status: BookingStatus, close: CloseCall
) -> None:
    """R9.4, issue 12.2: a cancellation / no-show whose commit landed but lost its
    acknowledgement finds its operation id on the booking: it returns the closed booking
    (not `BookingClosed` for its own change) and its links die in one batch (one entry)."""
    losing, world = lost_ack()
    booking, _ = world.book("ada@example.com")
    losing.armed = True
    closed = close(world, booking.id)
    assert losing.lost == 1
    assert closed.status is status
    assert world.booking(booking.id) == closed
    assert _invalidations(world, booking) == 1


@pytest.mark.parametrize(("name", "status", "close"), CLOSING, ids=[c[0] for c in CLOSING])
def test_closing_not_landed_is_not_fooled_by_a_twin_closing(
    name: str, status: BookingStatus, close: CloseCall
) -> None:
    """R9.4, issue 12.2: the booking closed with the same status by another caller while
    this call's commit failed is not this call's landing (the old check asked only for the
    status): the call runs again and is refused with `BookingClosed`, as any second
    cancellation is."""
    failing, world, other = worlds()
    booking, _ = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: close(other, booking.id)
    with pytest.raises(BookingClosed):
        close(world, booking.id)
    assert failing.failed == 1
    assert world.booking(booking.id).status is status


def test_complete_landed_returns_the_completed_booking_once() -> None:
    """R9.4, issue 12.2: `mark_session_complete` whose commit landed but lost its
    acknowledgement returns the booking that carries its own operation id."""
    losing, world = lost_ack()
    booking, raw = world.book("ada@example.com")
    losing.armed = True
    completed = world.bookings.mark_session_complete(booking.id)
    assert losing.lost == 1
    assert completed.status is BookingStatus.COMPLETED
    assert world.booking(booking.id) == completed
    assert world.guests.verify_token(raw).token.booking_id == booking.id  # links stay valid


def test_complete_not_landed_is_not_fooled_by_a_twin_completion() -> None:
    """R9.4, issue 12.2: the booking completed by another caller while this call's commit
    failed is not this call's completion (the old check asked only for the status): the
    call runs again and returns the row it wrote itself, with its own operation id."""
    failing, world, other = worlds()
    booking, _ = world.book("ada@example.com")
    twins: list[Booking] = []
    failing.armed = True
    failing.then = lambda: twins.append(other.bookings.mark_session_complete(booking.id))
    completed = world.bookings.mark_session_complete(booking.id)
    assert failing.failed == 1
    assert completed.status is BookingStatus.COMPLETED
    assert completed.operation_id not in (None, twins[0].operation_id)
    assert world.booking(booking.id).operation_id == completed.operation_id


def test_reschedule_landed_moves_the_booking_once() -> None:
    """R9.4, issue 12.2: `reschedule_session` whose commit landed but lost its
    acknowledgement finds its operation id on the booking: revision 1 (moved once, not
    twice), one new link mailed and live."""
    losing, world = lost_ack()
    booking, _ = world.book("ada@example.com")
    new_start = booking.start_time + timedelta(days=2)
    losing.armed = True
    outcome = world.bookings.reschedule_session(booking.id, new_start, MENTOR)
    assert losing.lost == 1
    assert outcome.booking.revision == 1
    assert outcome.booking.start_time == new_start
    assert outcome.link_sent
    assert [m.kind for m in world.sent] == ["booking", "reschedule"]
    assert world.guests.verify_token(world.last_raw()).token.booking_revision == 1


def test_reschedule_not_landed_is_not_fooled_by_a_twin_move_to_the_same_time() -> None:
    """R9.4, issue 12.2: another caller moved the booking to the very same start while this
    call's commit failed, leaving the row exactly as this attempt would have (the old check
    compared rows). That move is not this call's: it runs again, so the booking is moved
    twice (revision 2) and this call's link is the one live link (R2.2), not a second link
    for the twin's revision."""
    failing, world, other = worlds()
    booking, _ = world.book("ada@example.com")
    new_start = booking.start_time + timedelta(days=2)
    failing.armed = True
    failing.then = lambda: other.bookings.reschedule_session(booking.id, new_start, MENTOR)
    outcome = world.bookings.reschedule_session(booking.id, new_start, MENTOR)
    assert failing.failed == 1
    assert outcome.booking.revision == 2
    assert outcome.link_sent
    assert world.guests.verify_token(world.last_raw()).token.booking_revision == 2
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.verify_token(other.last_raw())  # the twin's link is for revision 1


def test_link_action_stamps_its_operation_id_on_the_booking() -> None:
    """Issue 12.2: a link action that writes the booking (`cancel_with_link`) leaves its own
    operation id on the row, so the row names the last call that wrote it, whatever path."""
    world = World.build()
    booking, raw = world.book("ada@example.com")
    written = world.booking(booking.id).operation_id
    cancelled = world.bookings.cancel_with_link(raw, "ill")
    stored = world.booking(booking.id)
    assert stored.operation_id is not None and stored.operation_id != written
    assert cancelled == stored
    consumed = world.audit(AuditAction.CONSUME_TOKEN)
    assert [entry.operation_id for entry in consumed] == [stored.operation_id]
