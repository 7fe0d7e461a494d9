"""Contract of `GuestRepository`: creation, lookup, the request slot and the blocked flag."""

from __future__ import annotations

from datetime import datetime

import attrs

from magiclink.domain._enums import InvalidationReason
from magiclink.domain._records import Guest
from magiclink.ports._unit_of_work import UnitOfWork
from magiclink.testing.contract_support import MICRO, MISSING_ID, T0, ContractBase, new_email

_A_MINUTE_AGO = T0 - MICRO * 60_000_000
"""The `not_after` of the request-slot tests: a 60-second interval before `T0`."""


class GuestRepositoryContract(ContractBase):
    """Every `GuestRepository` behaves like this (SPEC §2 Guest, §4 `request_inbox_link`)."""

    def test_get_or_create_creates_an_unblocked_guest_once(self, uow: UnitOfWork) -> None:
        """The first call stores a new guest and says so; the next returns it, unchanged."""
        email = new_email()
        last = T0 - MICRO

        guest, created = self.run(
            uow, lambda tx: tx.guests.get_or_create(email, now=T0, last_request_at=last)
        )
        assert created is True
        assert isinstance(guest.id, int)
        assert guest.normalized_email == email
        assert guest.blocked is False
        assert guest.last_request_at == last
        assert guest.created_at == T0

        # A later call with other times neither creates nor overwrites anything.
        again, created_again = self.run(
            uow,
            lambda tx: tx.guests.get_or_create(
                email, now=T0 + MICRO, last_request_at=T0 + 2 * MICRO
            ),
        )
        assert created_again is False
        assert again == guest
        assert self.read(uow, lambda tx: tx.guests.get(guest.id)) == guest

    def test_get_or_create_without_last_request_stores_null(self, uow: UnitOfWork) -> None:
        """A guest created on the system path has no `last_request_at` (never rate-limited)."""
        guest, _ = self.run(
            uow, lambda tx: tx.guests.get_or_create(new_email(), now=T0, last_request_at=None)
        )
        stored = self.read(uow, lambda tx: tx.guests.get(guest.id))
        assert stored is not None
        assert stored.last_request_at is None

    def test_distinct_emails_are_distinct_guests(self, uow: UnitOfWork) -> None:
        """Guests are keyed by normalized e-mail: two addresses, two ids."""
        first = self.run(uow, self.add_guest)
        second = self.run(uow, self.add_guest)
        assert first.id != second.id
        assert first.normalized_email != second.normalized_email

    def test_get_and_get_by_email(self, uow: UnitOfWork) -> None:
        """Both reads return the stored guest; unknown ids and e-mails give None."""
        guest = self.run(uow, self.add_guest)
        with uow.transaction() as tx:
            assert tx.guests.get(guest.id) == guest
            assert tx.guests.get_by_email(guest.normalized_email) == guest
            assert tx.guests.get(MISSING_ID) is None
            assert tx.guests.get_by_email(new_email()) is None

    def _claim(
        self, uow: UnitOfWork, last_request_at: datetime | None, not_after: datetime
    ) -> tuple[Guest, bool, Guest | None]:
        """Store a guest last requesting at `last_request_at`, claim its slot at `T0`, then
        read it back: the guest as stored, whether the claim succeeded, the guest after."""
        guest = self.run(uow, lambda tx: self.add_guest(tx, last_request_at=last_request_at))
        claimed = self.run(
            uow, lambda tx: tx.guests.claim_request_slot(guest.id, now=T0, not_after=not_after)
        )
        return guest, claimed, self.read(uow, lambda tx: tx.guests.get(guest.id))

    def test_claim_request_slot_when_never_requested(self, uow: UnitOfWork) -> None:
        """A NULL `last_request_at` is claimable: True, and it becomes `now`."""
        _, claimed, stored = self._claim(uow, None, T0 - MICRO)
        assert claimed is True
        assert stored is not None
        assert stored.last_request_at == T0

    def test_claim_request_slot_at_the_boundary_is_allowed(self, uow: UnitOfWork) -> None:
        """`last_request_at == not_after` claims the slot (`now - last < interval` is refused)."""
        _, claimed, stored = self._claim(uow, _A_MINUTE_AGO, _A_MINUTE_AGO)
        assert claimed is True
        assert stored is not None
        assert stored.last_request_at == T0

    def test_claim_request_slot_before_the_boundary_is_allowed(self, uow: UnitOfWork) -> None:
        """A previous request older than `not_after` claims the slot."""
        _, claimed, _ = self._claim(uow, _A_MINUTE_AGO - MICRO, _A_MINUTE_AGO)
        assert claimed

    def test_claim_request_slot_after_the_boundary_is_refused(self, uow: UnitOfWork) -> None:
        """`last_request_at > not_after` (by one microsecond) refuses and changes nothing."""
        guest, claimed, stored = self._claim(uow, _A_MINUTE_AGO + MICRO, _A_MINUTE_AGO)
        assert claimed is False
        assert stored == guest

    def test_claim_request_slot_of_unknown_guest_is_false(self, uow: UnitOfWork) -> None:
        """No guest, no slot: False, and no guest appears."""
        claimed = self.run(
            uow, lambda tx: tx.guests.claim_request_slot(MISSING_ID, now=T0, not_after=T0)
        )
        assert claimed is False
        assert self.read(uow, lambda tx: tx.guests.get(MISSING_ID)) is None

    def test_set_blocked_changes_only_the_flag(self, uow: UnitOfWork) -> None:
        """Blocking and unblocking return the updated guest and persist just `blocked`."""
        guest = self.run(uow, lambda tx: self.add_guest(tx, last_request_at=T0 - MICRO))

        blocked = self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        assert blocked == attrs.evolve(guest, blocked=True)
        assert self.read(uow, lambda tx: tx.guests.get(guest.id)) == blocked
        assert self.read(uow, lambda tx: tx.guests.get_by_email(guest.normalized_email)) == blocked

        unblocked = self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, False))
        assert unblocked == guest
        assert self.read(uow, lambda tx: tx.guests.get(guest.id)) == guest

    def test_set_blocked_is_idempotent(self, uow: UnitOfWork) -> None:
        """Blocking a blocked guest returns it blocked (the flag is set, not toggled)."""
        guest = self.run(uow, self.add_guest)
        self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        again = self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        assert again is not None
        assert again.blocked is True

    def test_set_blocked_of_unknown_guest_is_none(self, uow: UnitOfWork) -> None:
        """An unknown guest id gives None and creates nothing."""
        assert self.run(uow, lambda tx: tx.guests.set_blocked(MISSING_ID, True)) is None
        assert self.read(uow, lambda tx: tx.guests.get(MISSING_ID)) is None

    def test_get_or_create_returns_a_blocked_guest_as_is(self, uow: UnitOfWork) -> None:
        """An existing blocked guest comes back blocked and not created (issuing then refuses)."""
        guest = self.run(uow, self.add_guest)
        self.run(uow, lambda tx: tx.guests.set_blocked(guest.id, True))
        again, created = self.run(
            uow,
            lambda tx: tx.guests.get_or_create(guest.normalized_email, now=T0, last_request_at=T0),
        )
        assert created is False
        assert again.id == guest.id
        assert again.blocked is True

    def test_invalidate_all_live_kills_exactly_the_guests_live_tokens(
        self, uow: UnitOfWork
    ) -> None:
        """§9.3 (what blocking needs of the token port): `tokens.invalidate_all_live` kills the
        guest's unused, unexpired tokens of any booking or none, with the reason, and counts
        them; used, expired and other guests' tokens are left as they were."""
        guest = self.run(uow, self.add_guest)
        other = self.run(uow, self.add_guest)
        booking = self.run(uow, self.add_booking)
        live = [
            self.run(uow, lambda tx: self.add_token(tx, guest, booking)),
            self.run(uow, lambda tx: self.add_token(tx, guest, None)),
            self.run(uow, lambda tx: self.add_token(tx, guest, MISSING_ID)),
        ]
        expired = self.run(uow, lambda tx: self.add_token(tx, guest, None, expires_at=T0))
        used = self.run(uow, lambda tx: self.add_token(tx, guest, None))
        self.run(uow, lambda tx: tx.tokens.consume(used.id, now=T0))
        bystander = self.run(uow, lambda tx: self.add_token(tx, other, booking))
        reason = InvalidationReason.GUEST_BLOCKED
        count = self.run(
            uow, lambda tx: tx.tokens.invalidate_all_live(guest_id=guest.id, reason=reason, now=T0)
        )
        assert count == 3
        for token in live:
            stored = self.read(uow, lambda tx, t=token: tx.tokens.get(t.id))  # type: ignore[misc]
            assert stored is not None
            assert (stored.invalidated, stored.invalidation_reason) == (True, reason)
            assert stored.used_at == T0
        for token in (expired, used, bystander):
            stored = self.read(uow, lambda tx, t=token: tx.tokens.get(t.id))  # type: ignore[misc]
            assert stored is not None and stored.invalidated is False


__all__ = ["GuestRepositoryContract"]
