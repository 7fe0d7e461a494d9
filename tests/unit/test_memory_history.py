"""The in-memory adapter's cost does not grow with history (issue 15.2), shown without a clock.

Index appends happen in place and leave one undo entry each, whatever the index already holds;
a rollback truncates every index back to its length at begin. `bench/history.py` measures the
time; these tests count what the time depends on (copies, undo entries, records read).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from magiclink import Booking, BookingStatus, InvalidationReason, MagicLinkToken
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.memory._store import _Store
from magiclink.adapters.memory._unit_of_work import _InMemoryTransaction
from magiclink.ports import UNSAVED_ID, Transaction

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _token(tx: Transaction, guest_id: int, booking_id: int | None, n: int) -> MagicLinkToken:
    return tx.tokens.add(
        MagicLinkToken.new(
            token_hash=f"{guest_id}-{booking_id}-{n}",
            guest_id=guest_id,
            booking_id=booking_id,
            booking_revision=None if booking_id is None else 0,
            expires_at=NOW + timedelta(hours=1),
            created_at=NOW,
        )
    )


def add_booking(tx: Transaction, uid: str, guest_email: str = "old@example.com") -> int:
    """A scheduled booking a day after `NOW`; its id (shared with test_memory_records)."""
    return tx.bookings.add(
        Booking(
            id=UNSAVED_ID,
            uid=uid,
            mentor_id=1,
            guest_email=guest_email,
            start_time=NOW + timedelta(days=1),
            end_time=NOW + timedelta(days=1, minutes=15),
            status=BookingStatus.SCHEDULED,
            revision=0,
        )
    ).id


def _with_history(tokens: int) -> tuple[InMemoryUnitOfWork, _Store, int, int]:
    """A store whose guest has `tokens` committed inbox tokens and one booking with one token.

    Returns the unit of work, its store, the guest's id and the booking's id.
    """
    uow = InMemoryUnitOfWork()
    with uow.transaction() as tx:
        guest, _ = tx.guests.get_or_create("old@example.com", now=NOW, last_request_at=None)
        booking_id = add_booking(tx, "booking-1")
        _token(tx, guest.id, booking_id, 0)
        for n in range(tokens):
            _token(tx, guest.id, None, n)
        tx.commit()
    return uow, uow._store, guest.id, booking_id


def _undo_entries(tx: Transaction) -> int:
    assert isinstance(tx, _InMemoryTransaction)
    return len(tx._undo)


def _count_token_reads(store: _Store) -> list[int]:
    """The ids of the stored tokens read from now on (the store's token table, wrapped)."""
    reads: list[int] = []

    class _CountingTokens(dict[int, MagicLinkToken]):
        def __getitem__(self, key: int) -> MagicLinkToken:
            reads.append(key)
            return super().__getitem__(key)

    store.tokens = _CountingTokens(store.tokens)
    return reads


def test_append_is_in_place_and_rollback_restores_every_index_length() -> None:
    uow, store, guest_id, booking_id = _with_history(50)
    by_guest = store.tokens_by_guest[guest_id]
    by_booking = store.tokens_by_booking[booking_id]
    before = (list(by_guest), list(by_booking))
    with uow.transaction() as tx:
        _token(tx, guest_id, booking_id, 1)
        _token(tx, guest_id, None, 99)
        new_booking = add_booking(tx, "booking-2")
        _token(tx, guest_id, new_booking, 0)
        # The same list objects, grown: an append copies nothing.
        assert store.tokens_by_guest[guest_id] is by_guest
        assert store.tokens_by_booking[booking_id] is by_booking
        assert (len(by_guest), len(by_booking)) == (len(before[0]) + 3, len(before[1]) + 1)
        tx.rollback()
        assert (by_guest, by_booking) == before
        assert new_booking not in store.tokens_by_booking
    assert store.tokens_by_guest[guest_id] is by_guest
    assert (by_guest, by_booking) == before


def test_commit_keeps_the_appends_and_a_later_rollback_leaves_them() -> None:
    uow, store, guest_id, booking_id = _with_history(3)
    with uow.transaction() as tx:
        kept = _token(tx, guest_id, booking_id, 1)
        tx.commit()
    with uow.transaction() as tx:
        _token(tx, guest_id, booking_id, 2)
    assert store.tokens_by_booking[booking_id][-1] == kept.id
    assert store.tokens_by_guest[guest_id][-1] == kept.id


def test_one_token_leaves_as_many_undo_entries_whatever_the_history() -> None:
    counts = []
    for history in (0, 2_000):
        uow, _, guest_id, booking_id = _with_history(history)
        with uow.transaction() as tx:
            _token(tx, guest_id, booking_id, 1)
            counts.append(_undo_entries(tx))
    assert counts[0] == counts[1] == 4  # token, hash, booking index, guest index


def test_invalidating_a_booking_pair_reads_only_that_bookings_tokens() -> None:
    """`invalidate_live` of a guest and booking (supersede, reuse) goes through the booking's
    index: the guest's 500 inbox tokens are never read."""
    uow, store, guest_id, booking_id = _with_history(500)
    reads = _count_token_reads(store)
    with uow.transaction() as tx:
        killed = tx.tokens.invalidate_live(
            guest_id=guest_id,
            booking_id=booking_id,
            reason=InvalidationReason.SUPERSEDED,
            now=NOW,
        )
        tx.commit()
    assert killed == 1
    assert reads == store.tokens_by_booking[booking_id]


def test_superseding_inbox_links_reads_only_the_guests_unspent_inbox_links() -> None:
    """`invalidate_live` of a guest's inbox links (an inbox issue with supersede on) reads
    the guest's inbox index, never its booking links; the spent links it passes over leave
    that index, so the next supersede reads only what may still be live."""
    uow, store, guest_id, booking_id = _with_history(0)
    with uow.transaction() as tx:
        for n in range(300):
            _token(tx, guest_id, booking_id, n + 1)  # booking history: never read below
        inbox = [_token(tx, guest_id, None, n) for n in range(3)]
        assert tx.tokens.consume(inbox[0].id, now=NOW)
        tx.commit()
    reads = _count_token_reads(store)

    def supersede() -> int:
        with uow.transaction() as tx:
            killed = tx.tokens.invalidate_live(
                guest_id=guest_id, booking_id=None, reason=InvalidationReason.SUPERSEDED, now=NOW
            )
            tx.commit()
        return killed

    assert supersede() == 2  # the two live inbox links; the consumed one was only read
    assert reads == [t.id for t in inbox]
    assert store.inbox_by_guest[guest_id] == []
    reads.clear()
    with uow.transaction() as tx:
        fresh = _token(tx, guest_id, None, 3)
        tx.commit()
    assert supersede() == 1
    assert reads == [fresh.id]


def test_an_expired_inbox_link_stays_in_the_inbox_index_and_rollback_restores_it() -> None:
    uow, store, guest_id, _ = _with_history(2)  # two inbox links, expiring at NOW + 1 h
    ids = list(store.inbox_by_guest[guest_id])
    later = NOW + timedelta(hours=2)
    with uow.transaction() as tx:
        reason = InvalidationReason.SUPERSEDED
        kill = tx.tokens.invalidate_live  # expired links are not live: nothing is killed
        assert kill(guest_id=guest_id, booking_id=None, reason=reason, now=later) == 0
        assert store.inbox_by_guest[guest_id] == ids  # not spent: kept
        assert kill(guest_id=guest_id, booking_id=None, reason=reason, now=NOW) == 2
        assert store.inbox_by_guest[guest_id] == []
        tx.rollback()
    assert store.inbox_by_guest[guest_id] == ids


def test_purge_rebuilds_each_index_once_and_rollback_restores_it() -> None:
    """A purge of many tokens of one guest rewrites the guest's index once (one undo entry
    per touched key, not per token); rolled back, every index is as before."""
    uow, store, guest_id, booking_id = _with_history(30)
    with uow.transaction() as tx:
        fresh = tx.tokens.add(
            MagicLinkToken.new(
                token_hash="fresh",
                guest_id=guest_id,
                booking_id=booking_id,
                booking_revision=0,
                expires_at=NOW + timedelta(days=2),
                created_at=NOW,
            )
        )
        tx.commit()
    before = (list(store.tokens_by_guest[guest_id]), list(store.tokens_by_booking[booking_id]))
    with uow.transaction() as tx:
        purged = tx.tokens.purge_expired(expired_before=NOW + timedelta(days=1), limit=1_000)
        assert purged == 31
        # 31 tokens and 31 hashes removed, then one rewrite of each of the three index keys
        # (the booking's, the guest's, the guest's inbox).
        assert _undo_entries(tx) == 31 * 2 + 3
        assert store.tokens_by_guest[guest_id] == [fresh.id]
        assert store.tokens_by_booking[booking_id] == [fresh.id]
        tx.rollback()
    assert (store.tokens_by_guest[guest_id], store.tokens_by_booking[booking_id]) == before
