"""GuestService guests and audit: block/unblock, log_access, audit_trail; bad input (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magiclink import (
    AccessDenied,
    AuditAction,
    InvalidationReason,
    InvalidInput,
    RateLimited,
    Requester,
    TokenExpiredOrUsed,
    normalize_email,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.testing.faults import FaultyUnitOfWork
from magiclink.testing.strategies import (
    email_variants,
    emails,
    invalid_durations,
    invalid_emails,
    naive_datetimes,
    non_string_values,
)
from tests.unit.harness import STRANGER, STUDENT, T0, Harness, snapshot

# ------------------------------------------------------------------------ block, unblock


def test_block_unknown_email_creates_a_blocked_guest_who_cannot_get_links() -> None:
    h = Harness.build()
    guest = h.guests.block_guest(" Student@Example.com ")
    assert guest.blocked is True and guest.normalized_email == STUDENT
    with pytest.raises(AccessDenied):
        h.guests.request_inbox_link(STUDENT)


def test_9_3_block_kills_every_live_link_of_the_guest_in_its_transaction() -> None:
    """§9.3 / issue 16.4: the block invalidates the guest's live links (reason
    `guest_blocked`) and writes `BLOCK_GUEST` plus one `INVALIDATE_TOKEN` entry; another
    guest's links are untouched. (Before §9.3 a block changed only the guest row.)"""
    h = Harness.build()
    booking, raw = h.book()
    inbox = h.inbox(booking_id=booking.id).raw
    _, other = h.book(STRANGER)
    h.guests.block_guest(STUDENT)
    guest = h.guests.get_guest(STUDENT)
    assert guest is not None and guest.blocked
    for dead in (raw, inbox):
        token = h.token(dead)
        assert token.invalidated and token.invalidation_reason is InvalidationReason.GUEST_BLOCKED
    assert h.token(other).invalidated is False
    (block,) = h.audit(AuditAction.BLOCK_GUEST)
    assert (block.guest_id, block.success, block.metadata) == (guest.id, True, {"invalidated": 2})
    (killed,) = [e for e in h.audit(AuditAction.INVALIDATE_TOKEN) if e.guest_id == guest.id]
    assert killed.metadata["reason"] == "guest_blocked" and killed.metadata["count"] == 2


def test_9_3_unblocking_revives_no_link_but_a_new_one_works() -> None:
    """§9.3: after unblock the old links stay dead (`TokenExpiredOrUsed`, reason
    `invalidated`); `UNBLOCK_GUEST` is audited; a link issued afterwards works. (Before
    §9.3 unblocking revived the old links: this test replaces that one.)"""
    h = Harness.build()
    _, raw = h.book()
    h.guests.block_guest(STUDENT)
    with pytest.raises(AccessDenied):
        h.guests.consume_token(raw)
    unblocked = h.guests.unblock_guest(STUDENT.upper())
    assert unblocked is not None and unblocked.blocked is False
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.consume_token(raw)
    (entry,) = h.audit(AuditAction.UNBLOCK_GUEST)
    assert entry.guest_id == unblocked.id
    h.clock.advance(timedelta(minutes=2))
    fresh = h.guests.request_inbox_link(STUDENT)
    assert h.guests.consume_token(fresh.raw).guest.blocked is False


def test_16_4_block_and_unblock_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 16.4: `guest.blocked` (with the count of links killed) and `guest.unblocked`."""
    h = Harness.build()
    h.book()
    with caplog.at_level("INFO", logger="magiclink"):
        guest = h.guests.block_guest(STUDENT)
        h.guests.unblock_guest(STUDENT)
    events = [(r.getMessage().split()[0], getattr(r, "count", None)) for r in caplog.records]
    assert ("guest.blocked", 1) in events
    assert ("guest.unblocked", None) in events
    assert all(getattr(r, "guest_id", guest.id) == guest.id for r in caplog.records)


def test_unblock_of_unknown_address_returns_none_and_writes_nothing() -> None:
    h = Harness.build()
    before = snapshot(h.uow)
    assert h.guests.unblock_guest("nobody@example.com") is None
    assert snapshot(h.uow) == before


def test_block_keeps_rate_limit_state_and_unblock_restores_service() -> None:
    h = Harness.build()
    h.guests.request_inbox_link(STUDENT)
    h.guests.block_guest(STUDENT)
    h.guests.unblock_guest(STUDENT)
    with pytest.raises(RateLimited):
        h.guests.request_inbox_link(STUDENT)
    h.clock.advance(timedelta(seconds=60))
    h.guests.request_inbox_link(STUDENT)


# ----------------------------------------------------------------- log_access, audit_trail


def test_log_access_with_metadata() -> None:
    h = Harness.build()
    h.guests.log_access(
        7, "/session/12", "VIEW_SESSION", "12", success=False, metadata={"ip": "10.0.0.1", "n": 2}
    )
    (entry,) = h.guests.audit_trail(booking_id=12)
    assert (entry.guest_id, entry.endpoint, entry.action) == (7, "/session/12", "VIEW_SESSION")
    assert entry.resource_id == "12" and entry.success is False
    assert dict(entry.metadata) == {"ip": "10.0.0.1", "n": 2}
    assert entry.created_at == T0


def test_log_access_defaults() -> None:
    h = Harness.build()
    h.guests.log_access(None, "/health", "PING")
    (entry,) = h.guests.audit_trail()
    assert entry.guest_id is None and entry.resource_id is None
    assert entry.success is True and dict(entry.metadata) == {}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metadata": {"x": object()}},
        {"metadata": {1: "non-string key"}},
        {"metadata": {"nan": float("nan")}},
        {"metadata": ["not", "a", "mapping"]},
        {"endpoint": ""},
        {"action": "x" * 256},
        {"resource_id": "with\x00nul"},
        {"success": "yes"},
        {"guest_id": 0},
    ],
)
def test_log_access_refuses_bad_input_and_writes_nothing(kwargs: dict[str, object]) -> None:
    h = Harness.build()
    args: dict[str, object] = {"guest_id": 1, "endpoint": "/x", "action": "A", **kwargs}
    with pytest.raises(InvalidInput):
        h.guests.log_access(**args)  # type: ignore[arg-type]
    assert h.guests.audit_trail() == []


def test_audit_trail_filters_by_booking_and_guest_newest_first_with_limit() -> None:
    h = Harness.build()
    mine, _ = h.book()
    other, _ = h.book(STRANGER)
    h.clock.advance(timedelta(seconds=1))
    h.guests.log_access(None, "/x", "LATER", str(mine.id))
    student = h.guests.get_guest(STUDENT)
    stranger = h.guests.get_guest(STRANGER)
    assert student is not None and stranger is not None

    of_mine = h.guests.audit_trail(booking_id=mine.id)
    assert [e.action for e in of_mine] == ["LATER", AuditAction.CREATE_TOKEN]
    assert {e.resource_id for e in of_mine} == {str(mine.id)}
    of_stranger = h.guests.audit_trail(guest_id=stranger.id)
    assert [e.resource_id for e in of_stranger] == [str(other.id)]
    both = h.guests.audit_trail(booking_id=mine.id, guest_id=student.id)
    assert [e.action for e in both] == [AuditAction.CREATE_TOKEN]
    assert h.guests.audit_trail(booking_id=mine.id, guest_id=stranger.id) == []
    everything = h.guests.audit_trail()
    assert len(everything) == 3
    assert [e.created_at for e in everything] == sorted(
        (e.created_at for e in everything), reverse=True
    )
    assert h.guests.audit_trail(limit=1) == everything[:1]


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 1.5, "5"])
def test_audit_trail_refuses_bad_limit(limit: object) -> None:
    h = Harness.build()
    with pytest.raises(InvalidInput):
        h.guests.audit_trail(limit=limit)  # type: ignore[arg-type]


def test_tokens_for_booking_lists_oldest_first() -> None:
    h = Harness.build()
    booking, first = h.book()
    second = h.inbox(booking_id=booking.id).raw
    tokens = h.guests.tokens_for_booking(booking.id)
    assert [t.id for t in tokens] == [h.token(first).id, h.token(second).id]
    assert h.guests.tokens_for_booking(12345) == []


# ------------------------------------------------------------------------- bad input


@settings(max_examples=100)
@given(email=invalid_emails())
def test_invalid_email_is_invalid_input_everywhere_without_storage_calls(email: str) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    h = Harness.build(faulty)
    calls: list[Callable[[], object]] = [
        lambda: h.guests.request_inbox_link(email),
        lambda: h.guests.generate_token_for_rescheduled_booking(email, 1),
        lambda: h.guests.block_guest(email),
        lambda: h.guests.unblock_guest(email),
        lambda: h.bookings.book_session(1, email, T0),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert faulty.calls == []


@settings(max_examples=30)
@given(value=non_string_values())
def test_non_string_email_is_invalid_input(value: object) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    h = Harness.build(faulty)
    with pytest.raises(InvalidInput):
        h.guests.request_inbox_link(value)  # type: ignore[arg-type]
    assert faulty.calls == []


@settings(max_examples=100)
@given(email=emails().flatmap(lambda e: st.tuples(st.just(e), email_variants(e))))
def test_email_variants_reach_the_same_guest(email: tuple[str, str]) -> None:
    canonical, variant = email
    assert normalize_email(variant) == canonical
    h = Harness.build()
    first = h.guests.request_inbox_link(canonical)
    h.clock.advance(timedelta(minutes=1))
    second = h.guests.request_inbox_link(variant)
    assert first.guest_id == second.guest_id


@settings(max_examples=50)
@given(when=naive_datetimes())
def test_naive_datetimes_are_invalid_input_and_write_nothing(when: object) -> None:
    h = Harness.build()
    booking, _ = h.book()
    before = snapshot(h.uow)
    with pytest.raises(InvalidInput):
        h.bookings.book_session(1, STUDENT, when)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        h.bookings.reschedule_session(booking.id, when, Requester.system())  # type: ignore[arg-type]
    assert snapshot(h.uow) == before


@settings(max_examples=50)
@given(duration=invalid_durations())
def test_bad_session_duration_is_invalid_input(duration: object) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork(), count_begins=True)
    h = Harness.build(faulty)
    with pytest.raises(InvalidInput):
        h.bookings.book_session(1, STUDENT, T0, duration)  # type: ignore[arg-type]
    assert faulty.calls == []
