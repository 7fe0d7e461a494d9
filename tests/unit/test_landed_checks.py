"""Every `landed` check keyed by an operation id is exact (issue 12.2).

The hard case for a `landed` check is not the lost acknowledgement of a commit that landed
(tests/reliability/test_ambiguous_commit.py covers that for every operation) but its twin: a
commit that did NOT land, while another call left behind exactly what this one would have
written — the same booking, reason and instant (the clock here is frozen), the same token
consumed at the same `now`, the guest already blocked. A check that guesses from times or
states would then claim the other call's write as its own and skip its retry: a link action
reporting a cancellation that never happened, a consumption with two winners. Keyed by the
operation id written with the operation's own audit entries, each check below sees through it.

`CommitFailsThen` rolls the first commit back, raises the transient `StorageError` of a lost
connection, and runs `then` (the other call) before the runner's `landed` check reads.

The booking writes (book, cancel, no-show, complete, reschedule) store their operation id on
the booking row itself (`Booking.operation_id`, revision 0007): their checks read the row by
id (or uid) and claim it only when it carries their own id. Each is proven both ways: after
a commit that landed (`AckLost`) the call returns once, with no second effect; after one
that did not, a twin's same-looking change (the same status, the same uid and time, the same
new start) is not claimed, and the call runs again into its proper answer (R9.4).
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
    DuplicateRating,
    IncidentType,
    InvalidationReason,
    InvalidInput,
    Requester,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import MetricNames, Transaction, UnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from magiclink.testing.world import MENTOR_ID, World


class CommitFailsThen(FaultyUnitOfWork):
    """The `armed` write transaction's commit rolls back and reports a lost connection; the
    next read-only transaction (the runner's `landed` check) first runs `then`."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.armed = False
        self.then: Callable[[], object] | None = None
        self.failed = 0

    def transaction(self, *, readonly: bool = False) -> Transaction:
        if readonly and self.failed and self.then is not None:
            then, self.then = self.then, None
            then()
        tx = super().transaction(readonly=readonly)
        if readonly or not self.armed:
            return tx

        def roll_back_and_lose() -> None:
            self.armed = False
            self.failed += 1
            tx.rollback()
            raise StorageError("Storage error (OperationalError): connection lost", transient=True)

        tx.commit = roll_back_and_lose  # type: ignore[method-assign]
        return tx


class AckLost(FaultyUnitOfWork):
    """The `armed` write transaction commits for real, then reports a lost connection."""

    def __init__(self, inner: UnitOfWork) -> None:
        super().__init__(inner)
        self.armed = False
        self.lost = 0

    def transaction(self, *, readonly: bool = False) -> Transaction:
        tx = super().transaction(readonly=readonly)
        if readonly or not self.armed:
            return tx
        commit = tx.commit

        def commit_then_lose() -> None:
            commit()
            self.armed = False
            self.lost += 1
            raise StorageError("Storage error (OperationalError): connection lost", transient=True)

        tx.commit = commit_then_lose  # type: ignore[method-assign]
        return tx


def _worlds() -> tuple[CommitFailsThen, World, World]:
    """A world whose storage fails one commit, and a second world (the other caller) on the
    same storage and at the same frozen instant."""
    inner = InMemoryUnitOfWork()
    failing = CommitFailsThen(inner)
    world = World.build(failing)
    other = World.build(inner, start=world.clock.now())
    return failing, world, other


def test_batch_invalidation_not_landed_is_not_fooled_by_a_twin_entry() -> None:
    """`invalidate_tokens_by_booking_id`: another call's INVALIDATE_TOKEN entries of the same
    booking, reason and instant are not this call's: it runs again and counts its own."""
    failing, world, other = _worlds()
    booking, _ = world.book("ada@example.com")
    world.inbox("ada@example.com", booking.id)
    failing.armed = True
    failing.then = lambda: other.guests.log_access(
        None,
        "magiclink",
        AuditAction.INVALIDATE_TOKEN,
        str(booking.id),
        metadata={"reason": "manual_revocation", "count": 5},
    )
    count = world.guests.invalidate_tokens_by_booking_id(booking.id, "manual_revocation")
    assert failing.failed == 1
    assert count == 2  # the booking link and the inbox link, not the twin's 5
    tokens = world.guests.tokens_for_booking(booking.id)
    assert {t.invalidation_reason for t in tokens} == {InvalidationReason.MANUAL_REVOCATION}


def test_consume_not_landed_is_not_fooled_by_another_consumer_at_the_same_instant() -> None:
    """`consume_token`: the link consumed at this very `now` by another caller is that
    caller's win; this call runs again and loses (`TokenExpiredOrUsed`): one winner."""
    failing, world, other = _worlds()
    _, raw = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.guests.consume_token(raw)
    with pytest.raises(TokenExpiredOrUsed):
        world.guests.consume_token(raw)
    assert failing.failed == 1
    assert len(world.audit(AuditAction.CONSUME_TOKEN)) == 1


def test_link_action_not_landed_is_not_fooled_by_a_consumption_at_the_same_instant() -> None:
    """`cancel_with_link`: the link consumed at the same `now` by a plain consume is not this
    action's landing; the action runs again, is refused, and the booking stays open."""
    failing, world, other = _worlds()
    booking, raw = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.guests.consume_token(raw)
    with pytest.raises(TokenExpiredOrUsed):
        world.bookings.cancel_with_link(raw, "ill")
    assert failing.failed == 1
    assert not world.booking(booking.id).is_closed


def test_invalidate_token_not_landed_is_not_fooled_by_the_same_reason() -> None:
    """`invalidate_token`: the token already invalidated for the same reason by another call
    was not changed by this one: it runs again and answers False."""
    failing, world, other = _worlds()
    world.book("ada@example.com")
    token_id = world.token(world.last_raw()).id
    failing.armed = True
    failing.then = lambda: other.guests.invalidate_token(token_id, "manual_revocation")
    assert world.guests.invalidate_token(token_id, "manual_revocation") is False
    assert failing.failed == 1


def test_block_not_landed_runs_again_and_counts_the_links_it_killed() -> None:
    """`block_guest`: a guest already blocked by another call is not this block's landing;
    it runs again, writes its own BLOCK_GUEST entry, and its count is what it killed."""
    failing, world, other = _worlds()
    world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.guests.block_guest("ada@example.com")
    world.guests.block_guest("ada@example.com")
    assert failing.failed == 1
    blocks = world.audit(AuditAction.BLOCK_GUEST)
    assert sorted(entry.metadata["invalidated"] for entry in blocks) == [0, 1]


def test_block_landed_reports_the_links_it_killed() -> None:
    """`block_guest` whose commit landed but lost its acknowledgement: the count logged and
    counted is the one its own BLOCK_GUEST entry recorded, not 0."""
    inner = InMemoryUnitOfWork()

    class LosesAck(FaultyUnitOfWork):
        lose = True

        def transaction(self, *, readonly: bool = False) -> Transaction:
            tx = super().transaction(readonly=readonly)
            commit = tx.commit

            def commit_then_lose() -> None:
                commit()
                if not readonly and LosesAck.lose:
                    LosesAck.lose = False
                    raise StorageError("connection lost", transient=True)

            tx.commit = commit_then_lose  # type: ignore[method-assign]
            return tx

    world = World.build(inner)
    world.book("ada@example.com")
    blocking = World.build(LosesAck(inner), start=world.clock.now())
    blocking.guests.block_guest("ada@example.com")
    assert len(world.audit(AuditAction.BLOCK_GUEST)) == 1  # applied once
    killed = blocking.metrics.values(MetricNames.TOKENS_INVALIDATED, reason="guest_blocked")
    assert killed == [1.0]


def test_unblock_not_landed_runs_again() -> None:
    """`unblock_guest`: a guest already unblocked by another call is not this call's
    landing; it runs again and writes its own UNBLOCK_GUEST entry."""
    failing, world, other = _worlds()
    world.guests.block_guest("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.guests.unblock_guest("ada@example.com")
    guest = world.guests.unblock_guest("ada@example.com")
    assert guest is not None and not guest.blocked
    assert failing.failed == 1
    assert len(world.audit(AuditAction.UNBLOCK_GUEST)) == 2


def test_rating_not_landed_is_not_fooled_by_an_identical_rating() -> None:
    """`create_rating`: the same score by the same profile at the same instant, stored by
    another call, is not this call's: it runs again and meets `DuplicateRating`."""
    failing, world, other = _worlds()
    booking, _ = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.ratings.create_rating(booking.id, "student-1", 5)
    with pytest.raises(DuplicateRating):
        world.ratings.create_rating(booking.id, "student-1", 5)
    assert failing.failed == 1


def test_incident_not_landed_is_not_fooled_by_an_identical_report() -> None:
    """`create_incident`: an identical report at the same instant by another call is not
    this one's: it runs again, and both reports are stored (none is lost)."""
    failing, world, other = _worlds()
    booking, _ = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.quality.create_incident(
        "student-1", booking.uid, IncidentType.LATE, "late again"
    )
    world.quality.create_incident("student-1", booking.uid, IncidentType.LATE, "late again")
    assert failing.failed == 1
    with world.uow.transaction(readonly=True) as tx:
        reports = tx.incidents.list_by_booking_uid(booking.uid)
    assert len(reports) == 2
    assert len({report.operation_id for report in reports}) == 2


# --- Booking writes: the operation id is stored on the booking row (revision 0007) -------

MENTOR = Requester(user_id=MENTOR_ID)
UID = "booking-uid-1"


def _lost_ack() -> tuple[AckLost, World]:
    """A world whose storage loses the acknowledgement of one commit that landed."""
    losing = AckLost(InMemoryUnitOfWork())
    return losing, World.build(losing)


def _invalidations(world: World, booking: Booking) -> int:
    return len(world.audit(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id))


def test_book_session_landed_returns_the_booking_once() -> None:
    """R9.4, issue 12.2: `book_session` whose commit landed but lost its acknowledgement
    finds its booking by uid carrying its operation id: no `InvalidInput` for its own uid,
    one booking, one link mailed."""
    losing, world = _lost_ack()
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
    failing, world, other = _worlds()
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
    losing, world = _lost_ack()
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
    failing, world, other = _worlds()
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
    losing, world = _lost_ack()
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
    failing, world, other = _worlds()
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
    losing, world = _lost_ack()
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
    failing, world, other = _worlds()
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
