"""What the in-memory adapter's cheaper writes return and keep (issue 15).

The adapter builds changed records without `attrs.evolve`, and keeps what a consume or an
invalidation changed in a token (reason or None, used_at) beside the token until it is read.
Each read answers exactly the record `attrs.evolve` would have given, and a rollback leaves
the very objects that were stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from magiclink import BookingStatus, InvalidationReason, MagicLinkToken, StorageError
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.ports import NewAuditEntry, Transaction
from tests.unit.test_memory_history import add_booking

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
REASON = InvalidationReason.BOOKING_CANCELLED


def _setup(tokens: int) -> tuple[InMemoryUnitOfWork, int, list[MagicLinkToken]]:
    """A guest with one booking holding `tokens` live links; the booking id and the tokens."""
    uow = InMemoryUnitOfWork()
    with uow.transaction() as tx:
        guest, _ = tx.guests.get_or_create("ada@example.com", now=NOW, last_request_at=None)
        booking_id = add_booking(tx, "b-1", guest_email="ada@example.com")
        made = [
            tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=f"hash-{n}",
                    guest_id=guest.id,
                    booking_id=booking_id,
                    booking_revision=0,
                    expires_at=NOW + timedelta(hours=1),
                    created_at=NOW,
                )
            )
            for n in range(tokens)
        ]
        tx.commit()
    return uow, booking_id, made


def _killed(token: MagicLinkToken, used_at: datetime) -> MagicLinkToken:
    return attrs.evolve(token, invalidated=True, invalidation_reason=REASON, used_at=used_at)


def _reads(tx: Transaction, token: MagicLinkToken, booking_id: int) -> list[MagicLinkToken]:
    """The token as every read of the port shows it."""
    lookup = tx.tokens.lookup(token.token_hash)
    assert lookup is not None
    got = tx.tokens.get(token.id)
    assert got is not None
    listed = [t for t in tx.tokens.list_by_booking(booking_id) if t.id == token.id]
    return [lookup.token, got, *listed]


def test_an_invalidated_token_reads_as_evolve_would_build_it() -> None:
    uow, booking_id, (used, live) = _setup(2)
    with uow.transaction() as tx:
        assert tx.tokens.consume(used.id, now=NOW)
        tx.commit()
    with uow.transaction() as tx:
        result = tx.tokens.invalidate_by_booking(booking_id, reason=REASON, now=LATER)
        tx.commit()
    assert result.count == 2
    with uow.transaction(readonly=True) as tx:
        # A used token keeps its consumption time; a live one is marked used now.
        assert _reads(tx, used, booking_id) == [_killed(used, NOW)] * 3
        assert _reads(tx, live, booking_id) == [_killed(live, LATER)] * 3
        stats = tx.tokens.stats(now=LATER)
    assert (stats.invalidated, stats.live, stats.used) == (2, 0, 0)
    assert stats.invalidated_by_reason == {str(REASON): 2}


def test_a_consumed_token_reads_as_evolve_would_build_it_and_can_still_be_invalidated() -> None:
    uow, booking_id, (token,) = _setup(1)
    with uow.transaction() as tx:
        assert tx.tokens.consume(token.id, now=NOW)
        assert not tx.tokens.consume(token.id, now=LATER)  # one winner
        tx.commit()
    consumed = attrs.evolve(token, used_at=NOW)
    with uow.transaction() as tx:
        assert _reads(tx, token, booking_id) == [consumed] * 3
        stats = tx.tokens.stats(now=LATER)
        assert (stats.used, stats.live, stats.invalidated) == (1, 0, 0)
        assert (
            tx.tokens.invalidate_live(
                guest_id=token.guest_id, booking_id=booking_id, reason=REASON, now=LATER
            )
            == 0
        )  # a used link is not live
        # `invalidate` answers the token as it was: consumed.
        assert tx.tokens.invalidate(token.id, reason=REASON, now=LATER) == consumed
        assert tx.tokens.get(token.id) == _killed(token, NOW)
        tx.commit()


def test_an_invalidated_token_is_dead_to_every_write() -> None:
    uow, booking_id, (token,) = _setup(1)
    with uow.transaction() as tx:
        assert tx.tokens.invalidate(token.id, reason=REASON, now=NOW) == token
        tx.commit()
    with uow.transaction() as tx:
        assert not tx.tokens.consume(token.id, now=NOW)
        assert tx.tokens.invalidate(token.id, reason=REASON, now=NOW) is None
        assert tx.tokens.invalidate_by_booking(booking_id, reason=REASON, now=NOW).count == 0
        assert (
            tx.tokens.invalidate_live(
                guest_id=token.guest_id, booking_id=booking_id, reason=REASON, now=NOW
            )
            == 0
        )
        assert tx.tokens.invalidate_all_live(guest_id=token.guest_id, reason=REASON, now=NOW) == 0
        assert tx.tokens.get(token.id) == _killed(token, NOW)
        tx.commit()


def test_rollback_leaves_the_very_records_that_were_stored() -> None:
    uow, booking_id, tokens = _setup(3)
    with uow.transaction() as tx:
        assert tx.tokens.consume(tokens[0].id, now=NOW)
        assert tx.tokens.invalidate_by_booking(booking_id, reason=REASON, now=NOW).count == 3
        tx.rollback()
        assert all(tx.tokens.get(t.id) is t for t in tokens)


def test_purge_removes_invalidated_tokens_and_rollback_brings_them_back() -> None:
    uow, booking_id, tokens = _setup(2)
    with uow.transaction() as tx:
        tx.tokens.invalidate_by_booking(booking_id, reason=REASON, now=NOW)
        tx.commit()
    after_expiry = NOW + timedelta(hours=2)
    with uow.transaction() as tx:
        assert tx.tokens.count_expired(expired_before=after_expiry) == 2
        assert tx.tokens.purge_expired(expired_before=after_expiry, limit=10) == 2
        assert tx.tokens.get(tokens[0].id) is None
        assert tx.tokens.lookup(tokens[1].token_hash) is None
    with uow.transaction(readonly=True) as tx:  # the purge above was never committed
        assert [tx.tokens.get(t.id) for t in tokens] == [_killed(t, NOW) for t in tokens]


def test_a_changed_booking_and_guest_read_as_evolve_would_build_them() -> None:
    uow, booking_id, (token,) = _setup(1)
    with uow.transaction() as tx:
        booking = tx.bookings.get(booking_id)
        assert booking is not None
        tx.bookings.revoke_links(booking_id)
        moved = attrs.evolve(booking, status=BookingStatus.CANCELLED, operation_id="op-1")
        tx.bookings.update(moved)
        assert tx.guests.claim_request_slot(token.guest_id, now=LATER, not_after=LATER)
        guest = tx.guests.set_blocked(token.guest_id, True)
        tx.commit()
    with uow.transaction(readonly=True) as tx:
        assert tx.bookings.get(booking_id) == attrs.evolve(moved, link_generation=1)
        assert guest is not None
        assert (guest.blocked, guest.last_request_at) == (True, LATER)
        assert tx.guests.get(token.guest_id) == guest


def test_an_audit_entry_reads_as_written_and_keeps_its_metadata() -> None:
    uow, booking_id, (token,) = _setup(1)
    metadata = {"token_id": token.id}
    new = NewAuditEntry(
        guest_id=token.guest_id,
        endpoint="magiclink",
        action="consume_token",
        resource_id=str(booking_id),
        success=True,
        metadata=metadata,
        created_at=NOW,
        operation_id="op-1",
    )
    with uow.transaction() as tx:
        tx.audit.add_many([new])
        tx.commit()
    metadata["token_id"] = -1  # the caller's dict changes; the stored entry does not
    with uow.transaction(readonly=True) as tx:
        (entry,) = tx.audit.by_operation("op-1")
        assert tx.audit.list(booking_id=booking_id, guest_id=token.guest_id) == [entry]
    assert entry.metadata == {"token_id": token.id}
    fields = attrs.asdict(entry, recurse=False)
    assert fields.pop("id") > 0
    assert fields == {**attrs.asdict(new, recurse=False), "metadata": entry.metadata}


def test_a_closed_transaction_refuses_reads_and_commits() -> None:
    uow, _, (token,) = _setup(1)
    tx = uow.transaction()
    tokens = tx.tokens
    tx.close()
    tx.close()  # idempotent
    with pytest.raises(StorageError):
        tokens.get(token.id)
    with pytest.raises(StorageError):
        tx.audit.by_operation("op-1")
    with pytest.raises(StorageError):
        tx.commit()
    with uow.transaction(readonly=True) as fresh:  # the lock was released
        assert fresh.tokens.get(token.id) == token
