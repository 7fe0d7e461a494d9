"""§9.2 / R6: guests stored with the old normalization keep their rows and links."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from magiclink import GuestService, Settings, normalize_email
from magiclink.adapters.memory import ManualClock
from magiclink.ports import UnitOfWork

NOW = datetime(2030, 1, 1, 9, tzinfo=UTC)

# Plain ASCII addresses as the old rule stored them (`strip().lower()` of the input).
STORED = [
    "kim@example.com",
    "first.last+tag@sub.example.org",
    "o'brien_99%x@example.co.uk",
    "user@xn--mnchen-3ya.de",
    "p1-b2@soak.test",
    "a@b.co",
]


def _old_rule(email: str) -> str:
    return email.strip().lower()


@pytest.mark.parametrize("stored", STORED)
def test_r6_ascii_guests_stored_before_keep_their_rows(uow: UnitOfWork, stored: str) -> None:
    """An existing guest row is found again by every spelling the old rule accepted."""
    with uow.transaction() as tx:
        guest, created = tx.guests.get_or_create(stored, now=NOW, last_request_at=None)
        tx.commit()
    assert created
    guests = GuestService(uow, clock=ManualClock(NOW), settings=Settings())
    typed = f"  {stored.upper()} "
    assert normalize_email(typed) == _old_rule(typed) == stored
    issued = guests.request_inbox_link(typed)
    assert issued.guest_id == guest.id
    assert issued.email == stored
    assert guests.verify_token(issued.raw).guest.id == guest.id
