"""GuestService batch invalidation: R5 (one entry point, count, no-op), R8 (audit), R9 errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from magiclink import (
    AuditAction,
    Booking,
    BookingStatus,
    InvalidationReason,
    InvalidInput,
    MagicLinkError,
    StorageError,
    TokenExpiredOrUsed,
)
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import UNSAVED_ID
from magiclink.testing.faults import FaultyUnitOfWork, InjectedFault
from tests.unit.harness import STUDENT, T0, Harness, inner_snapshot, snapshot

REASON = InvalidationReason.BOOKING_CANCELLED


def test_r5_3_batch_invalidation_of_several_tokens_returns_count_and_kills_all() -> None:
    """R5.2/R5.3/R1.4: every token of the booking invalidated, with reason and used_at."""
    h = Harness.build()
    booking, first = h.book()
    raws = [first, h.inbox(booking_id=booking.id).raw, h.inbox(booking_id=booking.id).raw]
    h.guests.consume_token(raws[1])
    consumed_at = h.clock.now()
    h.clock.advance(timedelta(minutes=20))  # all expired now: they are invalidated anyway
    at = h.clock.now()

    count = h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)

    assert count == 3
    tokens = h.guests.tokens_for_booking(booking.id)
    assert [t.invalidated for t in tokens] == [True, True, True]
    assert {t.invalidation_reason for t in tokens} == {REASON}
    assert [h.token(r).used_at for r in raws] == [at, consumed_at, at]


def test_r5_3_invalidation_accepts_reason_as_string_and_refuses_unknown_reason() -> None:
    h = Harness.build()
    booking, raw = h.book()
    assert h.guests.invalidate_tokens_by_booking_id(booking.id, "incident_reported") == 1
    assert h.token(raw).invalidation_reason is InvalidationReason.INCIDENT_REPORTED
    with pytest.raises(InvalidInput):
        h.guests.invalidate_tokens_by_booking_id(booking.id, "because")


def test_r5_4_booking_with_no_tokens_returns_zero() -> None:
    h = Harness.build()
    with h.uow.transaction() as tx:
        empty = tx.bookings.add(
            Booking(
                id=UNSAVED_ID,
                uid="empty",
                mentor_id=1,
                guest_email=STUDENT,
                start_time=T0,
                end_time=T0 + timedelta(minutes=15),
                status=BookingStatus.SCHEDULED,
                revision=0,
            )
        )
        tx.commit()
    before = snapshot(h.uow)
    assert h.guests.invalidate_tokens_by_booking_id(empty.id, REASON) == 0
    assert snapshot(h.uow) == before


def test_r9_3_unknown_booking_returns_zero_and_writes_nothing() -> None:
    h = Harness.build()
    h.book()
    before = snapshot(h.uow)
    assert h.guests.invalidate_tokens_by_booking_id(987_654, REASON) == 0
    assert snapshot(h.uow) == before


def test_r5_3_already_invalidated_tokens_are_not_counted_again() -> None:
    h = Harness.build()
    booking, first = h.book()
    second = h.inbox(booking_id=booking.id).raw
    third = h.inbox(booking_id=booking.id).raw
    assert h.guests.invalidate_token(h.token(second).id, InvalidationReason.MANUAL_REVOCATION)
    revoked = h.token(second)

    assert h.guests.invalidate_tokens_by_booking_id(booking.id, REASON) == 2
    assert h.token(second) == revoked  # reason and used_at of the first invalidation kept
    assert h.token(first).invalidation_reason is REASON
    assert h.token(third).invalidation_reason is REASON
    assert h.guests.invalidate_tokens_by_booking_id(booking.id, REASON) == 0


def test_r5_3_invalidation_leaves_other_bookings_and_inbox_links_alone() -> None:
    h = Harness.build()
    mine, _ = h.book()
    other, other_raw = h.book("other@example.com")
    inbox_raw = h.inbox().raw
    h.guests.invalidate_tokens_by_booking_id(mine.id, REASON)
    assert h.guests.verify_token(other_raw).token.booking_id == other.id
    assert h.guests.verify_token(inbox_raw).token.booking_id is None


def test_r8_one_audit_entry_per_guest_with_reason_count_success_and_timestamp() -> None:
    """R8.1-R8.5: one INVALIDATE_TOKEN entry per guest whose tokens changed."""
    h = Harness.build()
    booking, _ = h.book()
    h.inbox(booking_id=booking.id)
    h.store_token("helper@example.com", booking_id=booking.id, booking_revision=0)
    student = h.guests.get_guest(STUDENT)
    helper = h.guests.get_guest("helper@example.com")
    assert student is not None and helper is not None
    h.clock.advance(timedelta(seconds=5))
    at = h.clock.now()

    assert h.guests.invalidate_tokens_by_booking_id(booking.id, REASON) == 3

    entries = h.audit(AuditAction.INVALIDATE_TOKEN, booking_id=booking.id)
    assert len(entries) == 2
    by_guest = {e.guest_id: e for e in entries}
    assert set(by_guest) == {student.id, helper.id}
    for guest_id, count in ((student.id, 2), (helper.id, 1)):
        entry = by_guest[guest_id]
        assert entry.action == "INVALIDATE_TOKEN"
        assert entry.resource_id == str(booking.id)
        assert entry.success is True
        assert entry.metadata["reason"] == "booking_cancelled"
        assert entry.metadata["count"] == count
        assert entry.created_at == at


def test_r8_no_audit_entry_when_nothing_changed() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    before = h.audit(AuditAction.INVALIDATE_TOKEN)
    h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    assert h.audit(AuditAction.INVALIDATE_TOKEN) == before


def test_r8_metadata_is_merged_but_cannot_override_reason_or_count() -> None:
    h = Harness.build()
    booking, _ = h.book()
    h.guests.invalidate_tokens_by_booking_id(
        booking.id, REASON, metadata={"event": "x", "reason": "forged", "count": 99}
    )
    (entry,) = h.audit(AuditAction.INVALIDATE_TOKEN)
    assert dict(entry.metadata) == {"event": "x", "reason": "booking_cancelled", "count": 1}


def _invalidation_calls() -> list[str]:
    probe = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(probe)
    booking, _ = h.book()
    probe.clear_calls()
    h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    return list(probe.calls)


def test_r8_invalidation_and_audit_are_one_transaction_whatever_call_fails() -> None:
    """R8 / §5.2: a failure of any storage call leaves neither the update nor the entries."""
    calls = _invalidation_calls()
    assert calls == ["tokens.invalidate_by_booking", "audit.add_many"]
    for k in range(1, len(calls) + 1):
        faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
        h = Harness.build(faulty)
        booking, raw = h.book()
        before = inner_snapshot(faulty)
        faulty.arm(k)
        with pytest.raises(StorageError) as caught:
            h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
        assert caught.value.transient is False
        assert faulty.failures == [calls[k - 1]]
        assert inner_snapshot(faulty) == before
        faulty.disarm()
        assert h.token(raw).invalidated is False


def test_r9_storage_error_surfaces_as_storage_error() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    booking, _ = h.book()
    faulty.arm(1, match="tokens.invalidate_by_booking")
    with pytest.raises(StorageError) as caught:
        h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    assert caught.value.code == "INTERNAL"
    assert h.metrics.count("magiclink_invalidation_failures_total", reason="booking_cancelled") == 1


def test_r9_foreign_exception_from_an_adapter_is_wrapped_into_storage_error() -> None:
    """No adapter or driver exception ever escapes a service (SPEC §4)."""
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    booking, raw = h.book()
    faulty.arm(
        1,
        match="tokens.invalidate_by_booking",
        error_factory=lambda name: InjectedFault(f"driver broke in {name}"),
    )
    with pytest.raises(StorageError) as caught:
        h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    assert isinstance(caught.value, MagicLinkError)
    assert isinstance(caught.value.__cause__, InjectedFault)
    assert caught.value.transient is False
    faulty.disarm()
    assert h.guests.verify_token(raw).token.invalidated is False


def test_r9_4_transient_error_in_invalidation_is_retried_once_and_succeeds() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    booking, raw = h.book()
    faulty.arm(1, transient=True, match="tokens.invalidate_by_booking")
    faulty.clear_calls()
    assert h.guests.invalidate_tokens_by_booking_id(booking.id, REASON) == 1
    assert faulty.calls.count("tokens.invalidate_by_booking") == 2
    assert h.metrics.count("magiclink_invalidation_retries_total") == 1
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)


def test_r9_4_transient_error_twice_gives_up_after_exactly_one_retry() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    booking, raw = h.book()
    faulty.arm(1, transient=True, times=5, match="tokens.invalidate_by_booking")
    faulty.clear_calls()
    with pytest.raises(StorageError) as caught:
        h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    assert caught.value.transient is True
    assert faulty.calls.count("tokens.invalidate_by_booking") == 2
    faulty.disarm()
    assert h.token(raw).invalidated is False


def test_r9_4_permanent_error_is_not_retried() -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    booking, _ = h.book()
    faulty.arm(1, transient=False, times=5, match="tokens.invalidate_by_booking")
    faulty.clear_calls()
    with pytest.raises(StorageError):
        h.guests.invalidate_tokens_by_booking_id(booking.id, REASON)
    assert faulty.calls.count("tokens.invalidate_by_booking") == 1


@pytest.mark.parametrize("bad", [0, -1, True, "1", None, 1.0, 2**63])
def test_r5_bad_booking_id_is_invalid_input_without_storage_calls(bad: object) -> None:
    faulty = FaultyUnitOfWork(InMemoryUnitOfWork())
    h = Harness.build(faulty)
    with pytest.raises(InvalidInput):
        h.guests.invalidate_tokens_by_booking_id(bad, REASON)  # type: ignore[arg-type]
    assert faulty.calls == []


def test_invalidate_token_single_is_audited_and_false_when_unknown_or_repeated() -> None:
    h = Harness.build()
    booking, raw = h.book()
    token_id = h.token(raw).id
    assert h.guests.invalidate_token(token_id, InvalidationReason.MANUAL_REVOCATION) is True
    assert h.guests.invalidate_token(token_id, InvalidationReason.MANUAL_REVOCATION) is False
    assert h.guests.invalidate_token(999_999, InvalidationReason.MANUAL_REVOCATION) is False
    (entry,) = h.audit(AuditAction.INVALIDATE_TOKEN)
    assert entry.resource_id == str(booking.id)
    assert entry.metadata["reason"] == "manual_revocation"
    assert entry.metadata["count"] == 1
    with pytest.raises(TokenExpiredOrUsed):
        h.guests.verify_token(raw)
