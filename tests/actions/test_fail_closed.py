"""Every booking event is fail-closed (SPEC §8.4), through the plain services and the link
actions alike, on memory, SQLite, PostgreSQL and MariaDB.

The batch invalidation after each plain event is made to fail (a permanent fault: no retry
heals it): the booking's earlier links are refused anyway, from the link generation the event
advanced in its own transaction, and the refusal reads `links_revoked` where nothing else
(a closed or moved booking) explains it. A link issued after the event works (R3.4, R4.4).
The fault-at-every-call version of this is tests/reliability/test_fault_injection.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest

from magiclink import AuditAction, MagicLinkToken, Requester, TokenExpiredOrUsed
from magiclink.ports import UnitOfWork
from magiclink.testing import hash_token
from magiclink.testing.faults import FaultyUnitOfWork
from tests.unit.harness import STUDENT, Harness

Event = Callable[[Harness, int], object]

PLAIN_EVENTS: dict[str, tuple[Event, str]] = {
    "cancel": (
        lambda h, b: h.bookings.cancel_session(b, "", "student", Requester(email=STUDENT)),
        "booking_closed",
    ),
    "no_show": (
        lambda h, b: h.bookings.mark_session_as_no_show(b, Requester.system()),
        "booking_closed",
    ),
    "reschedule": (
        lambda h, b: h.bookings.reschedule_session(
            b, h.clock.now() + timedelta(days=2), Requester.system()
        ),
        "booking_rescheduled",
    ),
    "rating": (lambda h, b: h.ratings.create_rating(b, "profile-1", 5), "links_revoked"),
    "incident": (
        lambda h, b: h.quality.create_incident("profile-1", h.booking(b).uid, "late", ""),
        "links_revoked",
    ),
}


@pytest.fixture
def faulty(any_uow: UnitOfWork) -> FaultyUnitOfWork:
    """A fault-injecting unit of work over each storage in turn."""
    return FaultyUnitOfWork(any_uow)


@pytest.mark.parametrize("event", PLAIN_EVENTS)
def test_8_4_plain_event_refuses_earlier_links_though_invalidation_failed(
    faulty: FaultyUnitOfWork, event: str
) -> None:
    """§8.4: the event commits, its batch invalidation fails; every earlier link of the
    booking is refused (booking link and inbox link), none was invalidated."""
    h = Harness.build(faulty)
    booking, first = h.book()
    second = h.inbox(booking_id=booking.id).raw
    run, reason = PLAIN_EVENTS[event]
    faulty.arm(1, match="tokens.invalidate_by_booking")

    run(h, booking.id)

    assert faulty.failures == ["tokens.invalidate_by_booking"]  # permanent: not retried
    for raw in (first, second):
        assert h.token(raw).invalidated is False
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.consume_token(raw)
    reasons = {e.metadata["reason"] for e in h.audit(AuditAction.VERIFY_TOKEN)}
    assert reasons == {reason}


@pytest.mark.parametrize("event", ["rating", "incident"])
def test_r3_4_r4_4_a_link_issued_after_the_event_works(
    faulty: FaultyUnitOfWork, event: str
) -> None:
    """R3.4 / R4.4: after a rating or an incident the booking stays open; a link issued
    afterwards records the new generation and works (the earlier one does not)."""
    h = Harness.build(faulty)
    booking, earlier = h.book()
    PLAIN_EVENTS[event][0](h, booking.id)
    h.clock.advance(timedelta(minutes=2))
    later = h.guests.request_inbox_link(STUDENT, booking.id)
    assert h.guests.verify_token(later.raw).token.id == later.token_id
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(earlier)


def test_8_4_a_link_action_advances_the_generation_in_its_transaction(
    faulty: FaultyUnitOfWork,
) -> None:
    """§8.4 through a link action: rating with one link advances the booking's generation in
    the same transaction, so a link still at the old generation that no invalidation touched
    (stored by a host's data migration, say) is refused as `links_revoked`."""
    h = Harness.build(faulty)
    booking, raw = h.book()
    h.ratings.rate_with_link(raw, 5)
    assert h.booking(booking.id).link_generation == 1
    untouched = secrets.token_hex(32)
    with faulty.transaction() as tx:
        guest = tx.guests.get_by_email(STUDENT)
        assert guest is not None
        tx.tokens.add(
            MagicLinkToken.new(
                token_hash=hash_token(untouched),
                guest_id=guest.id,
                booking_id=booking.id,
                booking_revision=booking.revision,
                link_generation=0,
                expires_at=h.clock.now() + timedelta(minutes=15),
                created_at=h.clock.now(),
            )
        )
        tx.commit()
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(untouched)
    assert h.audit(AuditAction.VERIFY_TOKEN)[0].metadata["reason"] == "links_revoked"
