"""Every `landed` check keyed by an operation id is exact (issue 12.2).

The hard case for a `landed` check is not the lost acknowledgement of a commit that landed
(tests/reliability/test_ambiguous_commit.py covers that for every operation) but its twin: a
commit that did NOT land, while another call left behind exactly what this one would have
written — the same booking, reason and instant (the clock here is frozen), the same token
consumed at the same `now`, the guest already blocked. A check that guesses from times or
states would then claim the other call's write as its own and skip its retry: a link action
reporting a cancellation that never happened, a consumption with two winners. Keyed by the
operation id written with the operation's own audit entries, each check below sees through it.
The booking writes, whose key is on the booking row, have their own module
(test_booking_landed_checks.py); the fault wrappers are in ambiguous_commits.py.
"""

from __future__ import annotations

import pytest

from magiclink import (
    AuditAction,
    DuplicateRating,
    IncidentType,
    InvalidationReason,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import MetricNames
from magiclink.testing.world import World
from tests.unit.ambiguous_commits import AckLost, worlds


def test_batch_invalidation_not_landed_is_not_fooled_by_a_twin_entry() -> None:
    """`invalidate_tokens_by_booking_id`: another call's INVALIDATE_TOKEN entries of the same
    booking, reason and instant are not this call's: it runs again and counts its own."""
    failing, world, other = worlds()
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
    failing, world, other = worlds()
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
    failing, world, other = worlds()
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
    failing, world, other = worlds()
    world.book("ada@example.com")
    token_id = world.token(world.last_raw()).id
    failing.armed = True
    failing.then = lambda: other.guests.invalidate_token(token_id, "manual_revocation")
    assert world.guests.invalidate_token(token_id, "manual_revocation") is False
    assert failing.failed == 1


def test_block_not_landed_runs_again_and_counts_the_links_it_killed() -> None:
    """`block_guest`: a guest already blocked by another call is not this block's landing;
    it runs again, writes its own BLOCK_GUEST entry, and its count is what it killed."""
    failing, world, other = worlds()
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
    world = World.build(inner)
    world.book("ada@example.com")
    losing = AckLost(inner)
    blocking = World.build(losing, start=world.clock.now())
    losing.armed = True
    blocking.guests.block_guest("ada@example.com")
    assert losing.lost == 1
    assert len(world.audit(AuditAction.BLOCK_GUEST)) == 1  # applied once
    killed = blocking.metrics.values(MetricNames.TOKENS_INVALIDATED, reason="guest_blocked")
    assert killed == [1.0]


def test_unblock_not_landed_runs_again() -> None:
    """`unblock_guest`: a guest already unblocked by another call is not this call's
    landing; it runs again and writes its own UNBLOCK_GUEST entry."""
    failing, world, other = worlds()
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
    failing, world, other = worlds()
    booking, _ = world.book("ada@example.com")
    failing.armed = True
    failing.then = lambda: other.ratings.create_rating(booking.id, "student-1", 5)
    with pytest.raises(DuplicateRating):
        world.ratings.create_rating(booking.id, "student-1", 5)
    assert failing.failed == 1


def test_incident_not_landed_is_not_fooled_by_an_identical_report() -> None:
    """`create_incident`: an identical report at the same instant by another call is not
    this one's: it runs again, and both reports are stored (none is lost)."""
    failing, world, other = worlds()
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
