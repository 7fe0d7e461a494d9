"""Contract of `TokenRepository`: storage, lookup, consumption, invalidation and upkeep.

A token is *live* when it is not invalidated, not used, `expires_at > now`, and — when bound
to a booking — that booking exists, is open (scheduled or completed) and, when the token has
a revision, is still at that revision (R7, §5.4).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs
import pytest

from magiclink.domain._enums import AuditAction, BookingStatus, InvalidationReason
from magiclink.domain._records import UNSAVED_ID, Booking, Guest, MagicLinkToken, NewAuditEntry
from magiclink.ports._unit_of_work import Transaction, UnitOfWork
from magiclink.testing.contract_support import MICRO, MISSING_ID, T0, TTL, ContractBase, new_hash

CANCELLED = InvalidationReason.BOOKING_CANCELLED


class TokenRepositoryContract(ContractBase):
    """Every `TokenRepository` behaves like this (R1, R5-R8, R10, SPEC §5.1, §5.4, §5.7-5.8)."""

    # ------------------------------------------------------------------ helpers

    def _setup(
        self,
        uow: UnitOfWork,
        *,
        status: BookingStatus = BookingStatus.SCHEDULED,
        revision: int = 0,
    ) -> tuple[Guest, Booking]:
        """A committed guest and a booking of theirs."""

        def work(tx: Transaction) -> tuple[Guest, Booking]:
            guest = self.add_guest(tx)
            booking = self.add_booking(
                tx, guest_email=guest.normalized_email, status=status, revision=revision
            )
            return guest, booking

        return self.run(uow, work)

    def _get(self, uow: UnitOfWork, token_id: int) -> MagicLinkToken:
        """The stored token, read in a new transaction (it must exist)."""
        token = self.read(uow, lambda tx: tx.tokens.get(token_id))
        assert token is not None, f"token {token_id} vanished"
        return token

    def _consume(self, uow: UnitOfWork, token_id: int, now: datetime = T0) -> bool:
        """`consume` in its own committed transaction."""
        return self.run(uow, lambda tx: tx.tokens.consume(token_id, now=now))

    # ------------------------------------------------------------------ add / get / lookup

    def test_add_stores_a_live_token(self, uow: UnitOfWork) -> None:
        """`add` returns the stored token: given fields, int id, not used, not invalidated."""
        guest, booking = self._setup(uow, revision=2)
        token_hash = new_hash()
        expires = T0 + TTL + timedelta(microseconds=654_321)
        token = self.run(
            uow,
            lambda tx: tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=token_hash,
                    guest_id=guest.id,
                    booking_id=booking.id,
                    booking_revision=2,
                    link_generation=3,
                    expires_at=expires,
                    created_at=T0,
                )
            ),
        )
        assert isinstance(token.id, int)
        assert not isinstance(token.id, bool)
        assert token == MagicLinkToken(
            id=token.id,
            token_hash=token_hash,
            guest_id=guest.id,
            booking_id=booking.id,
            booking_revision=2,
            expires_at=expires,
            used_at=None,
            invalidated=False,
            invalidation_reason=None,
            link_generation=3,
            created_at=T0,
        )
        assert self._get(uow, token.id) == token

    def test_add_an_inbox_token_without_booking(self, uow: UnitOfWork) -> None:
        """A token may have no booking and no revision (an inbox link)."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        stored = self._get(uow, token.id)
        assert stored == token
        assert stored.booking_id is None
        assert stored.booking_revision is None

    def test_distinct_tokens_get_distinct_ids(self, uow: UnitOfWork) -> None:
        """Storage assigns a new id to each token."""
        guest = self.run(uow, self.add_guest)
        first = self.run(uow, lambda tx: self.add_token(tx, guest))
        second = self.run(uow, lambda tx: self.add_token(tx, guest))
        assert first.id != second.id

    def test_get_unknown_is_none(self, uow: UnitOfWork) -> None:
        """An unknown token id gives None."""
        assert self.read(uow, lambda tx: tx.tokens.get(MISSING_ID)) is None

    def test_lookup_unknown_hash_is_none(self, uow: UnitOfWork) -> None:
        """R7.1: a well-formed hash that matches no token gives None."""
        guest = self.run(uow, self.add_guest)
        self.run(uow, lambda tx: self.add_token(tx, guest))
        assert self.read(uow, lambda tx: tx.tokens.lookup(new_hash())) is None

    def test_lookup_returns_token_guest_and_booking_state(self, uow: UnitOfWork) -> None:
        """R7: one read gives the token, its guest, and its booking's status and revision."""
        guest, booking = self._setup(uow, revision=4)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        found = self.read(uow, lambda tx: tx.tokens.lookup(token.token_hash))
        assert found is not None
        assert found.token == token
        assert found.guest == guest
        assert found.booking_status is BookingStatus.SCHEDULED
        assert found.booking_revision == 4

    def test_lookup_sees_the_booking_as_it_is_now(self, uow: UnitOfWork) -> None:
        """§5.4: after a reschedule or cancellation, lookup reports the new revision/status."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(
            uow,
            lambda tx: tx.bookings.update(
                attrs.evolve(booking, status=BookingStatus.CANCELLED, revision=1)
            ),
        )
        found = self.read(uow, lambda tx: tx.tokens.lookup(token.token_hash))
        assert found is not None
        assert found.token.booking_revision == 0
        assert found.booking_status is BookingStatus.CANCELLED
        assert found.booking_revision == 1

    def test_lookup_sees_the_guest_as_it_is_now(self, uow: UnitOfWork) -> None:
        """R7.2: a guest blocked after issuing is reported blocked."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        found = self.read(uow, lambda tx: tx.tokens.lookup(token.token_hash))
        assert found is not None
        assert found.guest.blocked is True

    def test_lookup_of_a_token_without_booking(self, uow: UnitOfWork) -> None:
        """An inbox token has no booking: status and revision are both None."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        found = self.read(uow, lambda tx: tx.tokens.lookup(token.token_hash))
        assert found is not None
        assert (found.token, found.guest) == (token, guest)
        assert found.booking_status is None
        assert found.booking_revision is None

    def test_lookup_of_a_token_whose_booking_is_gone(self, uow: UnitOfWork) -> None:
        """§5.4: a token pointing at a booking that no longer exists has both None.

        Storage must accept a token whose booking id matches no booking (no foreign key):
        a host may delete bookings, or keep them in a table of its own.
        """
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, MISSING_ID, booking_revision=0))
        found = self.read(uow, lambda tx: tx.tokens.lookup(token.token_hash))
        assert found is not None
        assert found.token.booking_id == MISSING_ID
        assert found.booking_status is None
        assert found.booking_revision is None

    # ------------------------------------------------------------------ consume

    def test_consume_is_one_conditional_write_5_1(self, uow: UnitOfWork) -> None:
        """§5.1: consuming a live token sets `used_at = now` once; a second consume is False."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        used_at = T0 + timedelta(minutes=3, microseconds=17)

        assert self._consume(uow, token.id, used_at) is True
        assert self._get(uow, token.id) == attrs.evolve(token, used_at=used_at)

        assert self._consume(uow, token.id, used_at + MICRO) is False
        assert self._get(uow, token.id).used_at == used_at

    def test_consume_twice_in_one_transaction(self, uow: UnitOfWork) -> None:
        """The second consume sees the first one's write even before commit."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        with uow.transaction() as tx:
            assert tx.tokens.consume(token.id, now=T0) is True
            assert tx.tokens.consume(token.id, now=T0) is False
            tx.commit()

    def test_consume_with_audit_writes_the_entry_exactly_when_it_consumes(
        self, uow: UnitOfWork
    ) -> None:
        """§9.7 and issue 15: `Transaction.consume_with_audit` (one statement where the
        adapter can) consumes a live token and appends its entry; on a used token it is
        False and appends nothing."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        entry = NewAuditEntry(
            guest_id=guest.id,
            endpoint="contract",
            action=AuditAction.CONSUME_TOKEN,
            resource_id=None,
            success=True,
            metadata={"token_id": token.id},
            created_at=T0,
            operation_id=f"consume-with-audit-{token.id}",
        )
        with uow.transaction() as tx:
            assert tx.consume_with_audit(token.id, now=T0, entry=entry) is True
            assert tx.consume_with_audit(token.id, now=T0, entry=entry) is False
            tx.commit()
        assert self._get(uow, token.id).used_at == T0
        written = self.run(uow, lambda tx: list(tx.audit.by_operation(entry.operation_id or "")))
        assert [(e.action, e.metadata) for e in written] == [(entry.action, entry.metadata)]

    def test_consume_if_accepted_consumes_a_good_link_once_or_changes_nothing(
        self, uow: UnitOfWork
    ) -> None:
        """Issue 15.1: `Transaction.consume_if_accepted` (one statement where the adapter has
        it; else it does nothing) either consumes a good link, returns its lookup and appends
        `entry.of_token(token)`, or changes nothing; on the used link it always changes
        nothing. The general path (`consume_with_audit`) then still consumes."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        operation_id = f"consume-if-accepted-{token.id}"
        entry = NewAuditEntry(
            None, "contract", AuditAction.CONSUME_TOKEN, None, True, {}, T0, operation_id
        )
        with uow.transaction() as tx:
            got = tx.consume_if_accepted(token.token_hash, now=T0, booking_id=None, entry=entry)
            again = tx.consume_if_accepted(token.token_hash, now=T0, booking_id=None, entry=entry)
            if got is None:  # not done here: the general path must still consume
                assert tx.consume_with_audit(token.id, now=T0, entry=entry.of_token(token))
            tx.commit()
        assert again is None
        assert got is None or (got.token.id, got.token.used_at, got.guest) == (token.id, T0, guest)
        assert self._get(uow, token.id).used_at == T0
        written = self.run(uow, lambda tx: list(tx.audit.by_operation(operation_id)))
        expected = entry.of_token(token)
        assert [(e.guest_id, e.resource_id, e.metadata) for e in written] == [
            (expected.guest_id, expected.resource_id, expected.metadata)
        ]

    def test_add_token_with_audit_stores_the_token_and_its_entry(self, uow: UnitOfWork) -> None:
        """Issue 15.1: `Transaction.add_token_with_audit` (one statement where the adapter
        can) stores the new token with an id and appends the entries `before`, then
        `entry.of_token(stored)`, all in the transaction: rolled back, none is there."""
        guest, booking = self._setup(uow)
        new = MagicLinkToken.new(
            token_hash="c" * 64,
            guest_id=guest.id,
            booking_id=booking.id,
            booking_revision=booking.revision,
            expires_at=T0 + timedelta(minutes=15),
            created_at=T0,
            link_generation=booking.link_generation,
        )
        entry = NewAuditEntry(
            None, "contract", AuditAction.CREATE_TOKEN, None, True, {"path": "inbox"}, T0, "add-1"
        )
        with uow.transaction() as tx:
            tx.add_token_with_audit(attrs.evolve(new, token_hash="d" * 64), entry)
            tx.rollback()
        earlier = attrs.evolve(
            entry, guest_id=guest.id, action=AuditAction.INVALIDATE_TOKEN, metadata={"count": 1}
        )
        with uow.transaction() as tx:
            stored = tx.add_token_with_audit(new, entry, before=[earlier])
            tx.commit()
        assert stored == attrs.evolve(new, id=stored.id) and stored.id > 0
        assert self._get(uow, stored.id) == stored
        written = self.run(uow, lambda tx: list(tx.audit.by_operation("add-1")))
        expected = entry.of_token(stored)
        in_order = sorted(written, key=lambda e: e.id)
        assert [(e.action, e.guest_id, e.resource_id, e.metadata) for e in in_order] == [
            (earlier.action, guest.id, None, {"count": 1}),
            (expected.action, guest.id, expected.resource_id, expected.metadata),
        ]
        assert self.run(uow, lambda tx: tx.tokens.lookup("d" * 64)) is None

    def test_claim_and_add_inbox_token_issues_to_a_free_guest_or_changes_nothing(
        self, uow: UnitOfWork
    ) -> None:
        """Issue 15.1: `Transaction.claim_and_add_inbox_token` (one statement where
        `uow.issues_in_one_statement`; else it does nothing) issues only to an existing,
        unblocked guest outside the interval — claiming the slot, storing the token as that
        guest's and appending `entry.of_token(stored)` — and for an unknown address, a
        blocked guest or one within the interval changes nothing at all."""
        now, not_after = T0 + timedelta(minutes=5), T0 + timedelta(minutes=1)
        free = self.run(uow, lambda tx: self.add_guest(tx, last_request_at=T0))
        recent = self.run(uow, lambda tx: self.add_guest(tx, last_request_at=now))
        blocked = self.run(uow, self.add_guest)
        self.run(uow, lambda tx: tx.guests.set_blocked(blocked.id, True))
        new = MagicLinkToken.new(
            token_hash=new_hash(),
            guest_id=UNSAVED_ID,
            booking_id=None,
            booking_revision=None,
            expires_at=now + TTL,
            created_at=now,
        )
        entry = NewAuditEntry(
            None, "contract", AuditAction.CREATE_TOKEN, None, True, {"path": "inbox"}, now, "claim"
        )

        def claim(email: str, token_hash: str) -> MagicLinkToken | None:
            token = attrs.evolve(new, token_hash=token_hash)
            return self.run(
                uow,
                lambda tx: tx.claim_and_add_inbox_token(email, token, entry, not_after=not_after),
            )

        refused = [
            claim(email, f"{n}" * 64)
            for n, email in enumerate(
                ["nobody@example.com", recent.normalized_email, blocked.normalized_email]
            )
        ]
        stored = claim(free.normalized_email, new.token_hash)

        assert refused == [None, None, None]
        hashes = [f"{n}" * 64 for n in range(3)]
        assert self.read(uow, lambda tx: [tx.tokens.lookup(h) for h in hashes]) == [None] * 3
        assert self.read(uow, lambda tx: tx.guests.get(recent.id)) == recent
        written = self.read(uow, lambda tx: list(tx.audit.by_operation("claim")))
        claimed = self.read(uow, lambda tx: tx.guests.get(free.id))
        if not uow.issues_in_one_statement:
            assert stored is None and written == [] and claimed == free
            return
        assert stored == attrs.evolve(new, id=stored.id if stored else 0, guest_id=free.id)
        assert stored is not None and self._get(uow, stored.id) == stored
        assert claimed == attrs.evolve(free, last_request_at=now)
        expected = entry.of_token(stored)
        assert [(e.guest_id, e.resource_id, e.metadata) for e in written] == [
            (free.id, None, expected.metadata)
        ]

    def test_consume_at_expiry_is_refused_r6_5(self, uow: UnitOfWork) -> None:
        """R7.3: `expires_at <= now` is dead; one microsecond before expiry is still live."""
        guest = self.run(uow, self.add_guest)
        at_boundary = self.run(uow, lambda tx: self.add_token(tx, guest, expires_at=T0))
        just_alive = self.run(uow, lambda tx: self.add_token(tx, guest, expires_at=T0 + MICRO))
        expired = self.run(uow, lambda tx: self.add_token(tx, guest, expires_at=T0 - MICRO))

        assert self._consume(uow, at_boundary.id) is False
        assert self._consume(uow, expired.id) is False
        assert self._consume(uow, just_alive.id) is True
        assert self._get(uow, at_boundary.id) == at_boundary
        assert self._get(uow, expired.id) == expired

    def test_consume_refuses_an_invalidated_token_r1_5(self, uow: UnitOfWork) -> None:
        """R1.5: an invalidated token cannot be consumed."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.tokens.invalidate(token.id, reason=CANCELLED, now=T0))
        before = self._get(uow, token.id)
        assert self._consume(uow, token.id, T0 + MICRO) is False
        assert self._get(uow, token.id) == before

    @pytest.mark.parametrize("status", [BookingStatus.CANCELLED, BookingStatus.NO_SHOW])
    def test_consume_refuses_when_booking_closed_5_4(
        self, uow: UnitOfWork, status: BookingStatus
    ) -> None:
        """§5.4: a cancelled or no-show booking kills its tokens even if never invalidated."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.bookings.update(attrs.evolve(booking, status=status)))
        assert self._consume(uow, token.id) is False
        assert self._get(uow, token.id) == token

    @pytest.mark.parametrize("status", [BookingStatus.SCHEDULED, BookingStatus.COMPLETED])
    def test_consume_accepts_when_booking_open(
        self, uow: UnitOfWork, status: BookingStatus
    ) -> None:
        """Scheduled and completed bookings are open: their live tokens can be consumed."""
        guest, booking = self._setup(uow, status=status)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        assert self._consume(uow, token.id) is True

    def test_consume_refuses_after_reschedule_5_4(self, uow: UnitOfWork) -> None:
        """§5.4, R2.4: a token of an earlier revision is dead once the booking moved on."""
        guest, booking = self._setup(uow, revision=1)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.bookings.update(attrs.evolve(booking, revision=2)))
        assert self._consume(uow, token.id) is False
        assert self._get(uow, token.id) == token

    def test_consume_refuses_a_revision_ahead_of_the_booking(self, uow: UnitOfWork) -> None:
        """The revision check is equality, not "at least": any other revision is dead."""
        guest, booking = self._setup(uow, revision=1)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking, booking_revision=2))
        assert self._consume(uow, token.id) is False

    def test_consume_null_revision_skips_the_check_r6_6(self, uow: UnitOfWork) -> None:
        """R6.6: a token issued before revisions existed (NULL) ignores the booking's revision."""
        guest, booking = self._setup(uow, revision=3)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking, booking_revision=None))
        assert self._consume(uow, token.id) is True

    def test_consume_null_revision_still_honours_a_closed_booking(self, uow: UnitOfWork) -> None:
        """R6.6 skips only the revision check: a cancelled booking still kills the token."""
        guest, booking = self._setup(uow, status=BookingStatus.CANCELLED)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking, booking_revision=None))
        assert self._consume(uow, token.id) is False

    def test_consume_refuses_when_booking_missing_5_4(self, uow: UnitOfWork) -> None:
        """§5.4: a token whose booking no longer exists is dead (revision or not)."""
        guest = self.run(uow, self.add_guest)
        with_revision = self.run(
            uow, lambda tx: self.add_token(tx, guest, MISSING_ID, booking_revision=0)
        )
        without_revision = self.run(
            uow, lambda tx: self.add_token(tx, guest, MISSING_ID + 1, booking_revision=None)
        )
        assert self._consume(uow, with_revision.id) is False
        assert self._consume(uow, without_revision.id) is False

    def test_consume_a_token_without_booking(self, uow: UnitOfWork) -> None:
        """R7: a token with no booking skips the booking checks."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        assert self._consume(uow, token.id) is True

    def test_consume_unknown_token_is_false(self, uow: UnitOfWork) -> None:
        """An unknown id is not consumable (and not an error)."""
        assert self._consume(uow, MISSING_ID) is False

    def test_consume_ignores_the_guest_flag(self, uow: UnitOfWork) -> None:
        """Blocking is checked by verification (R7.2) before consume; consume does not."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        assert self._consume(uow, token.id) is True

    # ------------------------------------------------------------------ invalidate

    def test_invalidate_returns_the_token_as_before_r1_4(self, uow: UnitOfWork) -> None:
        """R1.4: invalidated, reason set, `used_at = now`; the return value is the old state."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        now = T0 + timedelta(minutes=1, microseconds=5)
        before = self.run(
            uow,
            lambda tx: tx.tokens.invalidate(
                token.id, reason=InvalidationReason.MANUAL_REVOCATION, now=now
            ),
        )
        assert before == token
        stored = self._get(uow, token.id)
        assert stored == attrs.evolve(
            token,
            invalidated=True,
            invalidation_reason=InvalidationReason.MANUAL_REVOCATION,
            used_at=now,
        )
        assert stored.invalidation_reason is InvalidationReason.MANUAL_REVOCATION

    def test_invalidate_keeps_an_earlier_used_at_r1_4(self, uow: UnitOfWork) -> None:
        """R1.4: a consumed token keeps its consumption time."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        self._consume(uow, token.id, T0 + MICRO)
        before = self.run(
            uow,
            lambda tx: tx.tokens.invalidate(token.id, reason=CANCELLED, now=T0 + timedelta(1)),
        )
        assert before is not None
        assert before.used_at == T0 + MICRO
        stored = self._get(uow, token.id)
        assert stored.invalidated is True
        assert stored.used_at == T0 + MICRO

    def test_invalidate_twice_is_none_and_keeps_the_first(self, uow: UnitOfWork) -> None:
        """An already invalidated token gives None and keeps its first reason and time."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest))
        self.run(uow, lambda tx: tx.tokens.invalidate(token.id, reason=CANCELLED, now=T0))
        first = self._get(uow, token.id)
        again = self.run(
            uow,
            lambda tx: tx.tokens.invalidate(
                token.id, reason=InvalidationReason.SUPERSEDED, now=T0 + MICRO
            ),
        )
        assert again is None
        assert self._get(uow, token.id) == first

    def test_invalidate_unknown_is_none(self, uow: UnitOfWork) -> None:
        """An unknown token id gives None."""
        assert (
            self.run(uow, lambda tx: tx.tokens.invalidate(MISSING_ID, reason=CANCELLED, now=T0))
            is None
        )

    def test_invalidate_an_expired_token(self, uow: UnitOfWork) -> None:
        """Expired tokens can still be invalidated (the reason then shows in the audit)."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, expires_at=T0 - TTL))
        assert (
            self.run(uow, lambda tx: tx.tokens.invalidate(token.id, reason=CANCELLED, now=T0))
            == token
        )
        assert self._get(uow, token.id).invalidated is True

    # ------------------------------------------------------------------ invalidate_by_booking

    def test_invalidate_by_booking_counts_per_guest_r5_3(self, uow: UnitOfWork) -> None:
        """R5.2-5.3, R8.2: every token of the booking not yet invalidated — live, expired and
        consumed included — is invalidated; the result counts them per guest id."""
        now = T0 + timedelta(minutes=5, microseconds=99)

        def setup(tx: Transaction) -> dict[str, MagicLinkToken | Guest | Booking]:
            alice = self.add_guest(tx)
            bob = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=alice.normalized_email)
            other = self.add_booking(tx)
            return {
                "alice": alice,
                "bob": bob,
                "booking": booking,
                "live": self.add_token(tx, alice, booking),
                "expired": self.add_token(tx, alice, booking, expires_at=T0 - TTL),
                "consumed": self.add_token(tx, bob, booking),
                "dead": self.add_token(tx, alice, booking),
                "other_booking": self.add_token(tx, alice, other),
                "inbox": self.add_token(tx, alice),
            }

        made = self.run(uow, setup)
        alice, bob, booking = made["alice"], made["bob"], made["booking"]
        assert isinstance(alice, Guest)
        assert isinstance(bob, Guest)
        assert isinstance(booking, Booking)
        tokens = {k: v for k, v in made.items() if isinstance(v, MagicLinkToken)}
        self._consume(uow, tokens["consumed"].id, T0 + MICRO)
        self.run(
            uow,
            lambda tx: tx.tokens.invalidate(
                tokens["dead"].id, reason=InvalidationReason.SUPERSEDED, now=T0
            ),
        )
        dead_before = self._get(uow, tokens["dead"].id)

        result = self.run(
            uow, lambda tx: tx.tokens.invalidate_by_booking(booking.id, reason=CANCELLED, now=now)
        )

        assert dict(result.per_guest) == {alice.id: 2, bob.id: 1}
        assert all(isinstance(k, int) and isinstance(v, int) for k, v in result.per_guest.items())
        assert result.count == 3
        for name, used_at in (("live", now), ("expired", now), ("consumed", T0 + MICRO)):
            assert self._get(uow, tokens[name].id) == attrs.evolve(
                tokens[name], invalidated=True, invalidation_reason=CANCELLED, used_at=used_at
            ), name
        assert self._get(uow, tokens["dead"].id) == dead_before
        assert self._get(uow, tokens["other_booking"].id) == tokens["other_booking"]
        assert self._get(uow, tokens["inbox"].id) == tokens["inbox"]

    def test_invalidate_booking_with_audit_writes_one_counted_entry_per_guest(
        self, uow: UnitOfWork
    ) -> None:
        """R8.2 and issue 15: `Transaction.invalidate_booking_with_audit` (one statement
        where the adapter can) invalidates as `invalidate_by_booking` does and appends the
        template entry once per guest whose links died, that guest's count last in its
        metadata; a second call finds nothing and appends nothing."""

        def setup(tx: Transaction) -> tuple[Guest, Guest, Booking]:
            alice, bob = self.add_guest(tx), self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=alice.normalized_email)
            for guest in (alice, bob, alice):
                self.add_token(tx, guest, booking)
            self.add_token(tx, bob)  # an inbox link: not the booking's
            return alice, bob, booking

        alice, bob, booking = self.run(uow, setup)
        operation_id = f"batch-with-audit-{booking.id}"
        entry = NewAuditEntry(
            guest_id=None,
            endpoint="contract",
            action=AuditAction.INVALIDATE_TOKEN,
            resource_id=str(booking.id),
            success=True,
            metadata={"reason": str(CANCELLED), "count": -1, "by": "host"},
            created_at=T0,
            operation_id=operation_id,
        )

        def twice(tx: Transaction) -> list[dict[int, int]]:
            return [
                dict(
                    tx.invalidate_booking_with_audit(
                        booking.id, reason=CANCELLED, now=T0, entry=entry
                    ).per_guest
                )
                for _ in range(2)
            ]

        assert self.run(uow, twice) == [{alice.id: 2, bob.id: 1}, {}]
        written = self.read(uow, lambda tx: list(tx.audit.by_operation(operation_id)))
        assert sorted((e.guest_id, dict(e.metadata)) for e in written) == sorted(
            (guest.id, {"reason": str(CANCELLED), "count": count, "by": "host"})
            for guest, count in ((alice, 2), (bob, 1))
        )
        assert {(e.action, e.resource_id, e.endpoint, e.created_at) for e in written} == {
            (entry.action, entry.resource_id, entry.endpoint, T0)
        }
        stored = self.read(uow, lambda tx: tx.tokens.list_by_booking(booking.id))
        assert len(stored) == 3 and all(token.invalidated for token in stored)

    def test_invalidate_by_booking_twice_changes_nothing_p9(self, uow: UnitOfWork) -> None:
        """P9: the second invalidation of a booking finds nothing to do and returns 0."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        first = self.run(
            uow, lambda tx: tx.tokens.invalidate_by_booking(booking.id, reason=CANCELLED, now=T0)
        )
        assert first.count == 1
        stored = self._get(uow, token.id)
        second = self.run(
            uow,
            lambda tx: tx.tokens.invalidate_by_booking(
                booking.id, reason=InvalidationReason.RATING_SUBMITTED, now=T0 + MICRO
            ),
        )
        assert dict(second.per_guest) == {}
        assert second.count == 0
        assert self._get(uow, token.id) == stored

    def test_invalidate_by_booking_without_tokens_r5_4(self, uow: UnitOfWork) -> None:
        """R5.4, R9.3: a booking with no tokens, or no booking at all, gives an empty result."""
        _, booking = self._setup(uow)
        with uow.transaction() as tx:
            for booking_id in (booking.id, MISSING_ID):
                result = tx.tokens.invalidate_by_booking(booking_id, reason=CANCELLED, now=T0)
                assert dict(result.per_guest) == {}
                assert result.count == 0
            tx.commit()

    def test_invalidate_by_booking_of_a_vanished_booking(self, uow: UnitOfWork) -> None:
        """Tokens are found by their booking id even when the booking row is gone."""
        guest = self.run(uow, self.add_guest)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, MISSING_ID, booking_revision=0))
        result = self.run(
            uow, lambda tx: tx.tokens.invalidate_by_booking(MISSING_ID, reason=CANCELLED, now=T0)
        )
        assert dict(result.per_guest) == {guest.id: 1}
        assert self._get(uow, token.id).invalidated is True

    # ------------------------------------------------------------------ invalidate_live

    def test_invalidate_live_only_for_that_guest_and_booking_5_8(self, uow: UnitOfWork) -> None:
        """§5.7-5.8: only the guest's unused, unexpired, not invalidated tokens of the booking."""
        now = T0 + timedelta(minutes=1)

        def setup(tx: Transaction) -> tuple[Guest, Booking, dict[str, MagicLinkToken]]:
            guest = self.add_guest(tx)
            other_guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            other = self.add_booking(tx, guest_email=guest.normalized_email)
            return (
                guest,
                booking,
                {
                    "live": self.add_token(tx, guest, booking),
                    "live_too": self.add_token(tx, guest, booking, expires_at=now + MICRO),
                    "at_expiry": self.add_token(tx, guest, booking, expires_at=now),
                    "expired": self.add_token(tx, guest, booking, expires_at=now - MICRO),
                    "consumed": self.add_token(tx, guest, booking),
                    "dead": self.add_token(tx, guest, booking),
                    "other_booking": self.add_token(tx, guest, other),
                    "inbox": self.add_token(tx, guest),
                    "other_guest": self.add_token(tx, other_guest, booking),
                },
            )

        guest, booking, tokens = self.run(uow, setup)
        self._consume(uow, tokens["consumed"].id, T0)
        self.run(uow, lambda tx: tx.tokens.invalidate(tokens["dead"].id, reason=CANCELLED, now=T0))
        before = {name: self._get(uow, t.id) for name, t in tokens.items()}

        changed = self.run(
            uow,
            lambda tx: tx.tokens.invalidate_live(
                guest_id=guest.id,
                booking_id=booking.id,
                reason=InvalidationReason.SUPERSEDED,
                now=now,
            ),
        )

        assert changed == 2
        for name in ("live", "live_too"):
            assert self._get(uow, tokens[name].id) == attrs.evolve(
                tokens[name],
                invalidated=True,
                invalidation_reason=InvalidationReason.SUPERSEDED,
                used_at=now,
            ), name
        for name in before.keys() - {"live", "live_too"}:
            assert self._get(uow, tokens[name].id) == before[name], name

    def test_invalidate_live_inbox_tokens_only_5_8(self, uow: UnitOfWork) -> None:
        """`booking_id=None` means the guest's inbox links (no booking), none of the others."""

        def setup(tx: Transaction) -> tuple[Guest, dict[str, MagicLinkToken]]:
            guest = self.add_guest(tx)
            other_guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            return guest, {
                "inbox": self.add_token(tx, guest),
                "inbox_too": self.add_token(tx, guest),
                "booked": self.add_token(tx, guest, booking),
                "other_guest": self.add_token(tx, other_guest),
            }

        guest, tokens = self.run(uow, setup)
        changed = self.run(
            uow,
            lambda tx: tx.tokens.invalidate_live(
                guest_id=guest.id,
                booking_id=None,
                reason=InvalidationReason.REUSE_DETECTED,
                now=T0,
            ),
        )
        assert changed == 2
        for name in ("inbox", "inbox_too"):
            stored = self._get(uow, tokens[name].id)
            assert stored.invalidated is True
            assert stored.invalidation_reason is InvalidationReason.REUSE_DETECTED
            assert stored.used_at == T0
        for name in ("booked", "other_guest"):
            assert self._get(uow, tokens[name].id) == tokens[name], name

    def test_invalidate_live_with_nothing_live_is_zero(self, uow: UnitOfWork) -> None:
        """No live token of that pair: 0, and nothing changes."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking, expires_at=T0))
        changed = self.run(
            uow,
            lambda tx: tx.tokens.invalidate_live(
                guest_id=guest.id, booking_id=booking.id, reason=CANCELLED, now=T0
            ),
        )
        assert changed == 0
        assert self._get(uow, token.id) == token

    # ------------------------------------------------------------------ list_by_booking

    def test_list_by_booking_oldest_first(self, uow: UnitOfWork) -> None:
        """Every token of the booking, whatever its state, oldest first; no other token."""

        def setup(tx: Transaction) -> tuple[Guest, Booking, MagicLinkToken]:
            guest = self.add_guest(tx)
            booking = self.add_booking(tx, guest_email=guest.normalized_email)
            self.add_token(tx, guest)
            self.add_token(tx, guest, self.add_booking(tx))
            first = self.add_token(tx, guest, booking, created_at=T0, expires_at=T0 - MICRO)
            return guest, booking, first

        guest, booking, first = self.run(uow, setup)

        def later(minutes: int) -> MagicLinkToken:
            created = T0 + timedelta(minutes=minutes)
            return self.run(uow, lambda tx: self.add_token(tx, guest, booking, created_at=created))

        expected = [first, later(1), later(2), later(3)]
        self._consume(uow, expected[1].id, T0)
        self.run(uow, lambda tx: tx.tokens.invalidate(expected[2].id, reason=CANCELLED, now=T0))
        stored = [self._get(uow, t.id) for t in expected]

        assert self.read(uow, lambda tx: tx.tokens.list_by_booking(booking.id)) == stored

    def test_list_by_booking_of_unknown_booking_is_empty(self, uow: UnitOfWork) -> None:
        """No tokens, empty list."""
        assert self.read(uow, lambda tx: tx.tokens.list_by_booking(MISSING_ID)) == []

    # ------------------------------------------------------------------ purge / count / stats

    def _expiry_ladder(self, uow: UnitOfWork) -> dict[str, MagicLinkToken]:
        """Tokens expiring well before, just before, exactly at and after `T0`."""

        def setup(tx: Transaction) -> dict[str, MagicLinkToken]:
            guest = self.add_guest(tx)
            return {
                "old": self.add_token(tx, guest, expires_at=T0 - timedelta(days=30)),
                "older": self.add_token(tx, guest, expires_at=T0 - timedelta(days=60)),
                "just": self.add_token(tx, guest, expires_at=T0 - MICRO),
                "at": self.add_token(tx, guest, expires_at=T0),
                "future": self.add_token(tx, guest, expires_at=T0 + MICRO),
            }

        return self.run(uow, setup)

    def test_count_expired_is_strictly_before(self, uow: UnitOfWork) -> None:
        """`count_expired` counts `expires_at < expired_before`, not `<=`."""
        self._expiry_ladder(uow)
        with uow.transaction() as tx:
            assert tx.tokens.count_expired(expired_before=T0) == 3
            assert tx.tokens.count_expired(expired_before=T0 + MICRO) == 4
            assert tx.tokens.count_expired(expired_before=T0 - timedelta(days=365)) == 0

    def test_purge_expired_deletes_strictly_before(self, uow: UnitOfWork) -> None:
        """§5.6: purge deletes `expires_at < expired_before` and says how many."""
        tokens = self._expiry_ladder(uow)
        assert self.run(uow, lambda tx: tx.tokens.purge_expired(expired_before=T0, limit=100)) == 3
        with uow.transaction() as tx:
            for name in ("old", "older", "just"):
                assert tx.tokens.get(tokens[name].id) is None, name
                assert tx.tokens.lookup(tokens[name].token_hash) is None, name
            for name in ("at", "future"):
                assert tx.tokens.get(tokens[name].id) == tokens[name], name
            assert tx.tokens.count_expired(expired_before=T0) == 0
        assert self.run(uow, lambda tx: tx.tokens.purge_expired(expired_before=T0, limit=100)) == 0

    def test_purge_expired_respects_the_limit(self, uow: UnitOfWork) -> None:
        """§5.6: batches of at most `limit`; repeated calls finish the job."""
        tokens = self._expiry_ladder(uow)
        purged = [
            self.run(uow, lambda tx: tx.tokens.purge_expired(expired_before=T0, limit=2))
            for _ in range(3)
        ]
        assert purged == [2, 1, 0]
        assert self.read(uow, lambda tx: tx.tokens.count_expired(expired_before=T0)) == 0
        assert self._get(uow, tokens["at"].id) == tokens["at"]

    def test_purge_expired_removes_tokens_from_their_booking(self, uow: UnitOfWork) -> None:
        """A purged token no longer appears in `list_by_booking` nor counts in invalidation."""
        guest, booking = self._setup(uow)
        gone = self.run(uow, lambda tx: self.add_token(tx, guest, booking, expires_at=T0 - TTL))
        kept = self.run(uow, lambda tx: self.add_token(tx, guest, booking))
        self.run(uow, lambda tx: tx.tokens.purge_expired(expired_before=T0, limit=10))
        assert self.read(uow, lambda tx: tx.tokens.list_by_booking(booking.id)) == [kept]
        result = self.run(
            uow, lambda tx: tx.tokens.invalidate_by_booking(booking.id, reason=CANCELLED, now=T0)
        )
        assert dict(result.per_guest) == {guest.id: 1}
        assert self.read(uow, lambda tx: tx.tokens.get(gone.id)) is None

    def test_purge_expired_leaves_the_audit_log_alone(self, uow: UnitOfWork) -> None:
        """§5.6: purging tokens never deletes their audit trail."""
        guest, booking = self._setup(uow)
        token = self.run(uow, lambda tx: self.add_token(tx, guest, booking, expires_at=T0 - TTL))
        self.run(
            uow,
            lambda tx: tx.audit.add_many(
                [
                    self.audit_entry(
                        guest_id=guest.id,
                        resource_id=str(booking.id),
                        metadata={"token_id": token.id},
                    )
                ]
            ),
        )
        before = self.read(uow, lambda tx: tx.audit.list(booking_id=booking.id))
        assert len(before) == 1
        assert self.run(uow, lambda tx: tx.tokens.purge_expired(expired_before=T0, limit=10)) == 1
        assert self.read(uow, lambda tx: tx.audit.list(booking_id=booking.id)) == before

    def test_stats_partition_the_tokens(self, uow: UnitOfWork) -> None:
        """Each token counts once: invalidated, else used, else expired (`<= now`), else live.

        Here live ignores bookings (a token of a cancelled booking counts as live).
        """

        def setup(tx: Transaction) -> None:
            guest = self.add_guest(tx)
            cancelled = self.add_booking(tx, status=BookingStatus.CANCELLED)
            self.add_token(tx, guest)  # live
            self.add_token(tx, guest, cancelled)  # live: bookings are ignored here
            self.add_token(tx, guest, expires_at=T0 + MICRO)  # live
            self.add_token(tx, guest, expires_at=T0)  # expired: `expires_at <= now`
            self.add_token(tx, guest, expires_at=T0 - TTL)  # expired
            used = self.add_token(tx, guest)
            used_then_expired = self.add_token(tx, guest, expires_at=T0 - MICRO)
            assert tx.tokens.consume(used.id, now=T0 - 2 * MICRO)
            assert tx.tokens.consume(used_then_expired.id, now=T0 - 2 * MICRO)
            for reason in (CANCELLED, CANCELLED, InvalidationReason.RATING_SUBMITTED):
                dead = self.add_token(tx, guest)
                assert tx.tokens.invalidate(dead.id, reason=reason, now=T0 - MICRO)

        self.run(uow, setup)
        stats = self.read(uow, lambda tx: tx.tokens.stats(now=T0))
        assert (stats.live, stats.expired, stats.used, stats.invalidated) == (3, 2, 2, 3)
        assert dict(stats.invalidated_by_reason) == {
            "booking_cancelled": 2,
            "rating_submitted": 1,
        }

    # ------------------------------------------------------------------ §9.4 hourly cap

    def test_count_links_issued_counts_one_path_of_one_guest_after_since_9_4(
        self, uow: UnitOfWork
    ) -> None:
        """`audit.count_links_issued` counts the guest's `CREATE_TOKEN` entries whose
        `metadata["path"]` is the path and whose `created_at` is strictly after `since`:
        not another path, another guest, another action, nor an entry at `since`."""
        since = T0 - timedelta(hours=1)

        def setup(tx: Transaction) -> tuple[int, int]:
            guest, other = self.add_guest(tx), self.add_guest(tx)
            create = AuditAction.CREATE_TOKEN
            inbox = {"token_id": 1, "path": "inbox"}
            tx.audit.add_many(
                [
                    self.audit_entry(guest_id=guest.id, action=create, metadata=inbox),
                    self.audit_entry(
                        guest_id=guest.id,
                        action=create,
                        metadata=inbox,
                        created_at=since + MICRO,
                        resource_id="12",
                    ),
                    # not counted: at `since`, another path, no path, another action or guest
                    self.audit_entry(
                        guest_id=guest.id, action=create, metadata=inbox, created_at=since
                    ),
                    self.audit_entry(
                        guest_id=guest.id,
                        action=create,
                        metadata={"token_id": 2, "path": "booking"},
                    ),
                    self.audit_entry(guest_id=guest.id, action=create, metadata={"token_id": 3}),
                    self.audit_entry(
                        guest_id=guest.id, action=AuditAction.CONSUME_TOKEN, metadata=inbox
                    ),
                    self.audit_entry(guest_id=other.id, action=create, metadata=inbox),
                ]
            )
            return guest.id, other.id

        guest_id, other_id = self.run(uow, setup)

        def count(guest: int, path: str, after: datetime) -> int:
            return self.read(
                uow, lambda tx: tx.audit.count_links_issued(guest, path=path, since=after)
            )

        assert count(guest_id, "inbox", since) == 2
        assert count(guest_id, "inbox", since - MICRO) == 3
        assert count(guest_id, "inbox", T0) == 0
        assert count(guest_id, "booking", since) == 1
        assert count(other_id, "inbox", since) == 1
        assert count(MISSING_ID, "inbox", since) == 0

    def test_count_links_issued_sees_its_own_transaction_9_4(self, uow: UnitOfWork) -> None:
        """An entry written earlier in the same transaction counts (the cap reads after the
        rate-limit claim, in the issuing transaction)."""

        def work(tx: Transaction) -> tuple[int, int]:
            guest = self.add_guest(tx)
            before = tx.audit.count_links_issued(guest.id, path="inbox", since=T0 - TTL)
            tx.audit.add_many(
                [
                    self.audit_entry(
                        guest_id=guest.id,
                        action=AuditAction.CREATE_TOKEN,
                        metadata={"token_id": 1, "path": "inbox"},
                    )
                ]
            )
            return before, tx.audit.count_links_issued(guest.id, path="inbox", since=T0 - TTL)

        assert self.run(uow, work) == (0, 1)

    def test_stats_of_an_empty_store(self, uow: UnitOfWork) -> None:
        """No tokens: all zero, no reasons."""
        stats = self.read(uow, lambda tx: tx.tokens.stats(now=T0))
        assert (stats.live, stats.expired, stats.used, stats.invalidated) == (0, 0, 0, 0)
        assert dict(stats.invalidated_by_reason) == {}


__all__ = ["TokenRepositoryContract"]
