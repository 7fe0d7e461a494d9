"""Blocking kills links (SPEC §9.3, §4 `block_guest`) on every storage: memory, SQLite,
PostgreSQL and MariaDB (the kill is one UPDATE, `tokens.invalidate_all_live`)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from magiclink import AccessDenied, AuditAction, InvalidationReason, TokenExpiredOrUsed
from magiclink.ports import UnitOfWork
from tests.databases import any_uow
from tests.unit.harness import STRANGER, STUDENT, Harness

__all__ = ["any_uow"]


def test_9_3_block_kills_the_guests_live_links_and_unblock_revives_none(
    any_uow: UnitOfWork,
) -> None:
    """§9.3: in the block's transaction every live link of the guest (booking and inbox
    links) is invalidated as `guest_blocked`, with `BLOCK_GUEST` and `INVALIDATE_TOKEN`
    entries; another guest's link is untouched; after unblock the old links stay dead, the
    entry `UNBLOCK_GUEST` is written, and a link issued afterwards works."""
    h = Harness.build(any_uow)
    booking, raw = h.book()
    inbox = h.inbox().raw
    _, bystander = h.book(STRANGER)

    guest = h.guests.block_guest(STUDENT)

    for dead in (raw, inbox):
        token = h.token(dead)
        assert (token.invalidated, token.invalidation_reason) == (
            True,
            InvalidationReason.GUEST_BLOCKED,
        )
        with pytest.raises(AccessDenied):
            h.guests.verify_token(dead)
    assert h.token(bystander).invalidated is False
    assert [e.metadata["invalidated"] for e in h.audit(AuditAction.BLOCK_GUEST)] == [2]
    killed = [e for e in h.audit(AuditAction.INVALIDATE_TOKEN) if e.guest_id == guest.id]
    assert [(e.metadata["reason"], e.metadata["count"]) for e in killed] == [("guest_blocked", 2)]

    h.guests.unblock_guest(STUDENT)
    for dead in (raw, inbox):
        with pytest.raises(TokenExpiredOrUsed):
            h.guests.verify_token(dead)
    assert len(h.audit(AuditAction.UNBLOCK_GUEST)) == 1
    h.clock.advance(timedelta(minutes=2))
    fresh = h.guests.request_inbox_link(STUDENT, booking.id)
    assert h.guests.consume_token(fresh.raw).token.id == fresh.token_id
