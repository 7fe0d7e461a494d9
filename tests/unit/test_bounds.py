"""Inputs at the edge of datetime's range are refused as bad input, never as a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from magiclink import BookingService, GuestService, InvalidInput, Requester, Settings
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock


@pytest.mark.parametrize("ttl", [timedelta(days=367), timedelta.max, timedelta(0)])
def test_settings_refuse_ttls_that_could_overflow(ttl: timedelta) -> None:
    with pytest.raises(ValueError, match="token_ttl"):
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
