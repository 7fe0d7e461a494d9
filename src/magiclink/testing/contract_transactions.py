"""Contract of `UnitOfWork` and `Transaction`: atomicity, isolation, and faithful values."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from magiclink.domain._enums import BookingStatus, InvalidationReason
from magiclink.domain._errors import InvalidInput
from magiclink.domain._records import Booking, Guest, MagicLinkToken
from magiclink.ports import UNSAVED_ID
from magiclink.ports._unit_of_work import Transaction, UnitOfWork
from magiclink.testing.contract_support import (
    JOIN_SECONDS,
    LOCK_GRACE_SECONDS,
    MICRO,
    T0,
    TTL,
    Background,
    ContractBase,
    new_email,
)


class _Boom(Exception):
    """Raised inside a transaction to prove that an exception rolls it back."""


def _assert_aware(value: datetime | None, expected: datetime) -> None:
    """`value` is timezone-aware and the same instant as `expected`, to the microsecond."""
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() is not None
    assert value == expected
    assert value.microsecond == expected.astimezone(value.tzinfo).microsecond


class TransactionContract(ContractBase):
    """Every unit of work behaves like this (SPEC §4 unit of work, §5.2, R8 same transaction)."""

    # ------------------------------------------------------------------ commit and rollback

    def test_commit_makes_changes_visible_to_later_transactions(self, uow: UnitOfWork) -> None:
        """What a committed transaction wrote, a new transaction reads."""
        email = new_email()
        guest = self.run(uow, lambda tx: self.add_guest(tx, email))
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) == guest

    def test_a_transaction_reads_its_own_writes(self, uow: UnitOfWork) -> None:
        """Before commit, the writing transaction already sees its changes through every port."""
        with uow.transaction() as tx:
            guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            token = self.add_token(tx, guest, booking)
            tx.audit.add_many([self.audit_entry(guest_id=guest.id, resource_id=str(booking.id))])
            assert tx.guests.get(guest.id) == guest
            assert tx.bookings.get_by_uid(booking.uid) == booking
            assert tx.tokens.list_by_booking(booking.id) == [token]
            found = tx.tokens.lookup(token.token_hash)
            assert found is not None
            assert found.booking_status is BookingStatus.SCHEDULED
            assert [e.guest_id for e in tx.audit.list(booking_id=booking.id)] == [guest.id]
            tx.commit()

    def test_leaving_without_commit_rolls_back(self, uow: UnitOfWork) -> None:
        """A block left without `commit()` leaves no trace."""
        email = new_email()
        with uow.transaction() as tx:
            guest = self.add_guest(tx, email)
        with uow.transaction() as tx:
            assert tx.guests.get_by_email(email) is None
            assert tx.guests.get(guest.id) is None

    def test_an_exception_rolls_back_and_propagates(self, uow: UnitOfWork) -> None:
        """An exception leaving the block rolls back and reaches the caller unchanged."""
        email = new_email()
        with pytest.raises(_Boom), uow.transaction() as tx:
            self.add_guest(tx, email)
            raise _Boom()
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) is None

    def test_explicit_rollback_discards(self, uow: UnitOfWork) -> None:
        """`rollback()` discards the transaction's changes."""
        email = new_email()
        with uow.transaction() as tx:
            self.add_guest(tx, email)
            tx.rollback()
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) is None

    def test_rollback_covers_every_port_5_2(self, uow: UnitOfWork) -> None:
        """§5.2: one transaction spans every repository; a rollback undoes all of them."""
        email, uid = new_email(), "contract-rolled-back"
        with pytest.raises(_Boom), uow.transaction() as tx:
            booking, token = self._write_every_port(tx, email, uid)
            raise _Boom()
        with uow.transaction() as tx:
            assert tx.guests.get_by_email(email) is None
            assert tx.bookings.get_by_uid(uid) is None
            assert tx.tokens.lookup(token.token_hash) is None
            assert tx.ratings.get_by_booking(booking.id) is None
            assert tx.incidents.list_by_booking_uid(uid) == []
            assert tx.audit.list() == []

    def test_commit_covers_every_port_5_2(self, uow: UnitOfWork) -> None:
        """§5.2: what one transaction wrote through every repository lands together."""
        email, uid = new_email(), "contract-committed"

        booking_id = self.run(uow, lambda tx: self._write_every_port(tx, email, uid)[0].id)
        with uow.transaction() as tx:
            assert tx.guests.get_by_email(email) is not None
            assert tx.bookings.get(booking_id) is not None
            assert len(tx.tokens.list_by_booking(booking_id)) == 1
            assert tx.ratings.get_by_booking(booking_id) is not None
            assert len(tx.incidents.list_by_booking_uid(uid)) == 1
            assert len(tx.audit.list(booking_id=booking_id)) == 1

    def test_invalidation_and_audit_land_together_or_not_at_all_5_2(self, uow: UnitOfWork) -> None:
        """§5.2, R8: a lifecycle change, its invalidation and its audit roll back as one."""

        def setup(tx: Transaction) -> tuple[int, int]:
            guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            return booking.id, self.add_token(tx, guest, booking).id

        booking_id, token_id = self.run(uow, setup)
        booking = self.read(uow, lambda tx: tx.bookings.get(booking_id))
        token = self.read(uow, lambda tx: tx.tokens.get(token_id))
        assert booking is not None
        with pytest.raises(_Boom), uow.transaction() as tx:
            tx.bookings.update(attrs.evolve(booking, status=BookingStatus.CANCELLED))
            result = tx.tokens.invalidate_by_booking(
                booking_id, reason=InvalidationReason.BOOKING_CANCELLED, now=T0
            )
            assert result.count == 1
            tx.audit.add_many([self.audit_entry(resource_id=str(booking_id))])
            raise _Boom()
        with uow.transaction() as tx:
            assert tx.bookings.get(booking_id) == booking
            assert tx.tokens.get(token_id) == token
            assert tx.audit.list(booking_id=booking_id) == []

    def test_a_refused_write_rolls_back_the_transaction(self, uow: UnitOfWork) -> None:
        """A domain conflict raised by a port (here a duplicate uid) propagates; the block's
        earlier writes are rolled back and the unit of work stays usable."""
        taken = self.run(uow, self.add_booking)
        email = new_email()
        with pytest.raises(InvalidInput), uow.transaction() as tx:
            self.add_guest(tx, email)
            self.add_booking(tx, uid=taken.uid)
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) is None
        assert self.run(uow, lambda tx: self.add_guest(tx, email)).normalized_email == email

    def test_close_is_idempotent_and_keeps_a_commit(self, uow: UnitOfWork) -> None:
        """`close()` after `commit()` keeps the commit; closing twice is harmless."""
        email = new_email()
        tx = uow.transaction()
        try:
            self.add_guest(tx, email)
            tx.commit()
        finally:
            tx.close()
        tx.close()
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) is not None

    def test_close_without_commit_rolls_back(self, uow: UnitOfWork) -> None:
        """`close()` of an uncommitted transaction rolls it back."""
        email = new_email()
        tx = uow.transaction()
        try:
            self.add_guest(tx, email)
        finally:
            tx.close()
        assert self.read(uow, lambda tx: tx.guests.get_by_email(email)) is None

    def test_many_transactions_release_their_resources(self, uow: UnitOfWork) -> None:
        """Committed, abandoned, rolled back and failed transactions all give back what they
        hold (connections, locks): sixty in a row never exhaust the storage."""
        emails = [new_email() for _ in range(60)]
        for i, email in enumerate(emails):
            kind = i % 4
            try:
                with uow.transaction() as tx:
                    self.add_guest(tx, email)
                    if kind == 0:
                        tx.commit()
                    elif kind == 2:
                        tx.rollback()
                    elif kind == 3:
                        raise _Boom()
            except _Boom:
                pass
        with uow.transaction() as tx:
            stored = [tx.guests.get_by_email(email) is not None for email in emails]
        assert stored == [i % 4 == 0 for i in range(60)]

    def test_unit_of_work_as_context_manager(self, uow: UnitOfWork) -> None:
        """`with uow as tx:` is a transaction of the current thread, like `uow.transaction()`:
        committed changes stay, uncommitted ones are rolled back on exit."""
        email = new_email()
        with uow as tx:
            self.add_guest(tx, email)
            tx.commit()
        with uow as tx:
            assert tx.guests.get_by_email(email) is not None
        abandoned = new_email()
        with uow as tx:
            self.add_guest(tx, abandoned)
        assert self.read(uow, lambda tx: tx.guests.get_by_email(abandoned)) is None

    def test_readonly_transaction_reads_committed_data(self, uow: UnitOfWork) -> None:
        """`readonly=True` is a hint: such a transaction reads everything committed."""
        guest = self.run(uow, self.add_guest)
        with uow.transaction(readonly=True) as tx:
            assert tx.guests.get(guest.id) == guest

    # ------------------------------------------------------------------ isolation

    def test_uncommitted_write_is_invisible_to_another_transaction(self, uow: UnitOfWork) -> None:
        """A write is visible to other transactions only after commit; rolled back, never."""
        email = new_email()
        seen: list[Guest | None] = []

        def reader() -> None:
            with uow.transaction(readonly=True) as tx:
                seen.append(tx.guests.get_by_email(email))

        background = Background(reader, name="contract-reader")
        with uow.transaction() as tx:
            self.add_guest(tx, email)
            background.start()
            background.done.wait(LOCK_GRACE_SECONDS)
            # Left without commit: the reader must not have seen, and must not see, the guest.
        background.join()
        assert background.errors == []
        assert seen == [None]

    def test_committed_write_is_visible_to_another_thread(self, uow: UnitOfWork) -> None:
        """A transaction begun in another thread after the commit reads the change."""
        guest = self.run(uow, self.add_guest)
        seen: list[Guest | None] = []

        def reader() -> None:
            with uow.transaction(readonly=True) as tx:
                seen.append(tx.guests.get(guest.id))

        thread = threading.Thread(target=reader, name="contract-reader")
        thread.start()
        thread.join(JOIN_SECONDS)
        assert seen == [guest]

    # ------------------------------------------------------------------ values

    def test_times_come_back_aware_and_exact(self, uow: UnitOfWork) -> None:
        """Every stored time reads back timezone-aware and equal, microseconds included."""
        t = [T0 + timedelta(days=d, microseconds=123_456 + d) for d in range(10)]

        def work(tx: Transaction) -> tuple[int, int, int, str]:
            guest, _ = tx.guests.get_or_create(new_email(), now=t[0], last_request_at=t[1])
            booking = tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid="contract-times",
                    mentor_id=1,
                    guest_email=guest.normalized_email,
                    start_time=t[2],
                    end_time=t[3],
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                )
            )
            token = self.add_token(tx, guest, booking, expires_at=t[5], created_at=t[4])
            assert tx.tokens.consume(token.id, now=t[4] + MICRO)
            self.add_rating(tx, booking.id, rating=5, created_at=t[6])
            self.add_incident(tx, booking.uid, booking.id, created_at=t[7])
            tx.audit.add_many([self.audit_entry(resource_id="times", created_at=t[8])])
            return guest.id, booking.id, token.id, booking.uid

        guest_id, booking_id, token_id, uid = self.run(uow, work)
        with uow.transaction() as tx:
            guest = tx.guests.get(guest_id)
            booking = tx.bookings.get(booking_id)
            token = tx.tokens.get(token_id)
            rating = tx.ratings.get_by_booking(booking_id)
            [incident] = tx.incidents.list_by_booking_uid(uid)
            [entry] = tx.audit.list()
        assert guest is not None
        assert booking is not None
        assert token is not None
        assert rating is not None
        _assert_aware(guest.created_at, t[0])
        _assert_aware(guest.last_request_at, t[1])
        _assert_aware(booking.start_time, t[2])
        _assert_aware(booking.end_time, t[3])
        _assert_aware(token.created_at, t[4])
        _assert_aware(token.used_at, t[4] + MICRO)
        _assert_aware(token.expires_at, t[5])
        _assert_aware(rating.created_at, t[6])
        _assert_aware(incident.created_at, t[7])
        _assert_aware(entry.created_at, t[8])

    def test_times_in_other_offsets_keep_their_instant(self, uow: UnitOfWork) -> None:
        """An aware time in another offset is stored as the same instant."""
        ist = timezone(timedelta(hours=5, minutes=30))
        minus = timezone(timedelta(hours=-7))
        start = (T0 + timedelta(microseconds=7)).astimezone(ist)
        end = (T0 + timedelta(minutes=15, microseconds=7)).astimezone(minus)
        booking = self.run(
            uow,
            lambda tx: tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid="contract-offsets",
                    mentor_id=1,
                    guest_email=new_email(),
                    start_time=start,
                    end_time=end,
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                )
            ),
        )
        stored = self.read(uow, lambda tx: tx.bookings.get(booking.id))
        assert stored is not None
        _assert_aware(stored.start_time, T0 + timedelta(microseconds=7))
        _assert_aware(stored.end_time, T0 + timedelta(minutes=15, microseconds=7))

    def test_ids_are_positive_ints(self, uow: UnitOfWork) -> None:
        """Every id storage assigns is a positive `int` (not a bool, str or Decimal)."""

        def work(tx: Transaction) -> list[int | None]:
            guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            token = self.add_token(tx, guest, booking, expires_at=T0 + TTL)
            rating = self.add_rating(tx, booking.id, rating=2)
            incident = self.add_incident(tx, booking.uid, booking.id)
            tx.audit.add_many([self.audit_entry(guest_id=guest.id)])
            return [guest.id, booking.id, token.id, rating.id, incident.id]

        ids = self.run(uow, work)
        with uow.transaction() as tx:
            [entry] = tx.audit.list()
            ids.append(entry.id)
            ids.append(entry.guest_id)
            guest = tx.guests.get(entry.guest_id or 0)
            assert guest is not None
            ids.append(guest.id)
        for value in ids:
            assert type(value) is int, repr(value)
            assert value > 0

    def _write_every_port(
        self, tx: Transaction, email: str, uid: str
    ) -> tuple[Booking, MagicLinkToken]:
        """Write through every repository in `tx`: a guest with `email`, a booking `uid`, its
        token, rating, incident and audit entry. Returns the booking and the token."""
        guest = self.add_guest(tx, email)
        booking = self.add_booking(tx, uid=uid, guest_email=email)
        token = self.add_token(tx, guest, booking)
        self.add_rating(tx, booking.id, rating=3)
        self.add_incident(tx, uid, booking.id)
        tx.audit.add_many([self.audit_entry(guest_id=guest.id, resource_id=str(booking.id))])
        return booking, token


__all__ = ["TransactionContract"]
