"""Contract of `BookingRepository`: the port a host may implement over its own table."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from magiclink.domain._enums import BookingStatus
from magiclink.domain._errors import InvalidInput
from magiclink.domain._records import Booking
from magiclink.domain._transactions import run_in_transaction
from magiclink.ports import UNSAVED_ID
from magiclink.ports._unit_of_work import Transaction, UnitOfWork
from magiclink.testing.contract_support import (
    LOCK_GRACE_SECONDS,
    MICRO,
    MISSING_ID,
    T0,
    Background,
    ContractBase,
    new_uid,
)


class BookingRepositoryContract(ContractBase):
    """Every `BookingRepository` behaves like this (SPEC §2 Booking, §4 `BookingService`)."""

    def test_add_stores_every_field_and_assigns_an_int_id(self, uow: UnitOfWork) -> None:
        """`add` returns the stored booking; `get` and `get_by_uid` return the same record."""
        uid = new_uid()
        start = T0 + timedelta(days=2, microseconds=123_457)
        booking = self.run(
            uow,
            lambda tx: tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=uid,
                    mentor_id=7,
                    guest_email="student@example.org",
                    start_time=start,
                    end_time=start + timedelta(minutes=45),
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                )
            ),
        )
        assert isinstance(booking.id, int)
        assert not isinstance(booking.id, bool)
        assert (booking.uid, booking.mentor_id, booking.guest_email) == (
            uid,
            7,
            "student@example.org",
        )
        assert booking.start_time == start
        assert booking.end_time == start + timedelta(minutes=45)
        assert booking.status is BookingStatus.SCHEDULED
        assert booking.revision == 0
        with uow.transaction() as tx:
            assert tx.bookings.get(booking.id) == booking
            assert tx.bookings.get_by_uid(uid) == booking

    @pytest.mark.parametrize("status", list(BookingStatus))
    def test_every_status_round_trips_as_the_enum(
        self, uow: UnitOfWork, status: BookingStatus
    ) -> None:
        """A stored status reads back as the same `BookingStatus` member, not a bare string."""
        booking = self.run(uow, lambda tx: self.add_booking(tx, status=status, revision=3))
        stored = self.read(uow, lambda tx: tx.bookings.get(booking.id))
        assert stored is not None
        assert stored.status is status
        assert stored.revision == 3

    def test_distinct_bookings_get_distinct_ids(self, uow: UnitOfWork) -> None:
        """Storage assigns a new id to each booking."""
        first = self.run(uow, self.add_booking)
        second = self.run(uow, self.add_booking)
        assert first.id != second.id

    def test_unknown_id_and_uid_give_none(self, uow: UnitOfWork) -> None:
        """A miss is None, never an exception (R9.3: an unknown booking is not an error)."""
        self.run(uow, self.add_booking)
        with uow.transaction() as tx:
            assert tx.bookings.get(MISSING_ID) is None
            assert tx.bookings.get(MISSING_ID, for_update=True) is None
            assert tx.bookings.get_by_uid(new_uid()) is None

    def test_get_for_update_returns_the_booking(self, uow: UnitOfWork) -> None:
        """`for_update=True` reads the same record (and locks it until the transaction ends)."""
        booking = self.run(uow, self.add_booking)
        assert self.run(uow, lambda tx: tx.bookings.get(booking.id, for_update=True)) == booking

    def test_get_for_update_prevents_lost_updates(self, uow: UnitOfWork) -> None:
        """Two read-modify-write transactions that read `for_update` never lose an update:
        the second one reads only after the first ends (R2: each reschedule bumps the
        revision by exactly one)."""
        booking = self.run(uow, self.add_booking)

        def bump(tx: Transaction) -> None:
            current = tx.bookings.get(booking.id, for_update=True)
            assert current is not None
            tx.bookings.update(attrs.evolve(current, revision=current.revision + 1))

        # As a service would: a transient error (a lock wait that timed out) is retried once.
        other = Background(lambda: run_in_transaction(uow, bump), name="contract-locker")
        with uow.transaction() as tx:
            current = tx.bookings.get(booking.id, for_update=True)
            assert current is not None
            other.start()
            # A correct adapter keeps the other thread waiting on the lock all along.
            other.done.wait(LOCK_GRACE_SECONDS)
            tx.bookings.update(attrs.evolve(current, revision=current.revision + 1))
            tx.commit()
        other.join()
        assert other.errors == []
        stored = self.read(uow, lambda tx: tx.bookings.get(booking.id))
        assert stored is not None
        assert stored.revision == booking.revision + 2

    def test_duplicate_uid_is_invalid_input(self, uow: UnitOfWork) -> None:
        """A second booking with a taken uid raises `InvalidInput` and stores nothing."""
        original = self.run(uow, lambda tx: self.add_booking(tx, mentor_id=1))
        with uow.transaction() as tx, pytest.raises(InvalidInput):
            self.add_booking(tx, uid=original.uid, mentor_id=2)
        assert self.read(uow, lambda tx: tx.bookings.get_by_uid(original.uid)) == original

    def test_update_writes_status_times_and_revision(self, uow: UnitOfWork) -> None:
        """`update` persists the new status, start and end times and revision (a reschedule)."""
        booking = self.run(uow, self.add_booking)
        moved = attrs.evolve(
            booking,
            start_time=booking.start_time + timedelta(days=1, microseconds=1),
            end_time=booking.end_time + timedelta(days=1, microseconds=1),
            status=BookingStatus.COMPLETED,
            revision=booking.revision + 1,
        )
        self.run(uow, lambda tx: tx.bookings.update(moved))
        with uow.transaction() as tx:
            assert tx.bookings.get(booking.id) == moved
            assert tx.bookings.get_by_uid(booking.uid) == moved

    def test_update_leaves_uid_and_parties_alone(self, uow: UnitOfWork) -> None:
        """`update` writes status, times and revision only: uid, mentor and guest e-mail stay."""
        booking = self.run(uow, lambda tx: self.add_booking(tx, mentor_id=5))
        changed = attrs.evolve(
            booking,
            uid=new_uid(),
            mentor_id=6,
            guest_email="someone-else@example.org",
            status=BookingStatus.CANCELLED,
            start_time=booking.start_time + MICRO,
        )
        self.run(uow, lambda tx: tx.bookings.update(changed))
        with uow.transaction() as tx:
            stored = tx.bookings.get(booking.id)
            assert stored == attrs.evolve(
                booking, status=BookingStatus.CANCELLED, start_time=booking.start_time + MICRO
            )
            assert tx.bookings.get_by_uid(changed.uid) is None

    def test_update_touches_only_that_booking(self, uow: UnitOfWork) -> None:
        """Updating one booking leaves every other booking as it was."""
        target = self.run(uow, self.add_booking)
        bystander = self.run(uow, self.add_booking)
        self.run(
            uow,
            lambda tx: tx.bookings.update(
                attrs.evolve(target, status=BookingStatus.NO_SHOW, revision=9)
            ),
        )
        assert self.read(uow, lambda tx: tx.bookings.get(bystander.id)) == bystander

    def test_revoke_links_advances_the_generation_of_that_booking_only(
        self, uow: UnitOfWork
    ) -> None:
        """§8.4: `revoke_links` adds one to the booking's link generation (from 0, and again);
        `update` leaves the generation alone; other bookings and unknown ids are untouched."""
        target = self.run(uow, self.add_booking)
        bystander = self.run(uow, self.add_booking)
        assert target.link_generation == 0
        self.run(uow, lambda tx: tx.bookings.revoke_links(target.id))
        self.run(uow, lambda tx: tx.bookings.revoke_links(target.id))
        self.run(uow, lambda tx: tx.bookings.revoke_links(MISSING_ID))
        self.run(uow, lambda tx: tx.bookings.update(attrs.evolve(target, revision=1)))
        stored = self.read(uow, lambda tx: tx.bookings.get(target.id))
        assert stored == attrs.evolve(target, revision=1, link_generation=2)
        assert self.read(uow, lambda tx: tx.bookings.get(bystander.id)) == bystander

    def test_revoke_links_kills_older_tokens_for_lookup_and_consume(self, uow: UnitOfWork) -> None:
        """§8.4: a token records its booking's generation; once the booking moved past it,
        `lookup` reports the new generation and `consume` refuses the token, while a token
        issued at the new generation is consumed."""
        guest = self.run(uow, self.add_guest)
        booking = self.run(uow, self.add_booking)
        old = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.bookings.revoke_links(booking.id))
        advanced = self.read(uow, lambda tx: tx.bookings.get(booking.id))
        assert advanced is not None
        new = self.run(uow, lambda tx: self.add_token(tx, guest, advanced))
        found = self.read(uow, lambda tx: tx.tokens.lookup(old.token_hash))
        assert found is not None
        assert (found.token.link_generation, found.booking_link_generation) == (0, 1)
        assert self.run(uow, lambda tx: tx.tokens.consume(old.id, now=T0)) is False
        assert self.run(uow, lambda tx: tx.tokens.consume(new.id, now=T0)) is True

    def test_large_ids_and_long_texts_round_trip(self, uow: UnitOfWork) -> None:
        """Values the services accept fit: 64-bit mentor ids, 255-character uids, 254-char
        e-mails, non-ASCII addresses."""
        uid = "u" * 255
        email = ("é" * 60 + "@" + "x" * 189 + ".org")[:254]
        booking = self.run(
            uow,
            lambda tx: self.add_booking(tx, uid=uid, mentor_id=2**63 - 1, guest_email=email),
        )
        stored = self.read(uow, lambda tx: tx.bookings.get_by_uid(uid))
        assert stored is not None
        assert stored == booking
        assert stored.mentor_id == 2**63 - 1
        assert stored.guest_email == email


__all__ = ["BookingRepositoryContract"]
