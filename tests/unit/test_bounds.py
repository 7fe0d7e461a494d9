"""Inputs at the edge of datetime's range are refused as bad input, never as a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from magiclink import BookingService, GuestService, InvalidInput, Requester, Settings
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock


@pytest.mark.parametrize("ttl", [timedelta(days=367), timedelta.max, timedelta(0)])
def test_settings_refuse_ttls_that_could_overflow(ttl: timedelta) -> None:
    """§9.6: an out-of-range ttl is `InvalidInput` when the settings are built."""
    with pytest.raises(InvalidInput, match="token_ttl"):
        Settings(token_ttl=ttl)


def test_reschedule_past_year_9999_is_invalid_input_before_the_booking_is_read() -> None:
    """A bad `new_start` wins over an unknown booking: validation comes first (SPEC §4)."""
    uow = InMemoryUnitOfWork()
    service = BookingService(
        uow,
        GuestService(uow, clock=ManualClock(datetime(2030, 1, 1, tzinfo=UTC))),
        notifier=InMemoryNotifier(),
    )
    with pytest.raises(InvalidInput):
        service.reschedule_session(
            424242, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), Requester.system()
        )


def _services() -> tuple[GuestService, BookingService]:
    uow = InMemoryUnitOfWork()
    guests = GuestService(uow, clock=ManualClock(datetime(2030, 1, 1, tzinfo=UTC)))
    return guests, BookingService(uow, guests, notifier=InMemoryNotifier())


@pytest.mark.parametrize("email", ["ada\ud800@example.com", "\udfff@example.com"])
def test_lone_surrogates_are_bad_input_not_a_storage_error(email: str) -> None:
    """Text every storage can hold is checked up front, the same on every adapter."""
    guests, _ = _services()
    with pytest.raises(InvalidInput):
        guests.request_inbox_link(email)
    with pytest.raises(InvalidInput):
        guests.log_access(None, "endpoint\ud800", "ACTION")


@pytest.mark.parametrize("metadata", [{"note": "a\x00b"}, {"note": "\ud800"}])
def test_audit_metadata_that_postgres_jsonb_cannot_hold_is_refused(
    metadata: dict[str, str],
) -> None:
    guests, _ = _services()
    with pytest.raises(InvalidInput):
        guests.log_access(None, "endpoint", "ACTION", metadata=metadata)
    assert guests.audit_trail() == []


@pytest.mark.parametrize("uid", ["abc ", " abc", "abc\t"])
def test_booking_uid_with_outer_whitespace_is_refused(uid: str) -> None:
    """MariaDB compares 'abc' and 'abc ' as equal: refuse the ambiguity on every adapter."""
    _, bookings = _services()
    with pytest.raises(InvalidInput):
        bookings.book_session(7, "ada@example.com", datetime(2030, 1, 2, tzinfo=UTC), uid=uid)
