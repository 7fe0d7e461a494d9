"""The booking scope of a link (SPEC §9.1): may this token act on that booking?"""

from __future__ import annotations

from typing import Final

from magiclink.domain._enums import RefusalReason
from magiclink.domain._errors import AccessDenied
from magiclink.domain._policy import require_optional_id
from magiclink.domain._records import TokenLookup
from magiclink.ports._unit_of_work import Transaction

WRONG_BOOKING_MESSAGE: Final = "This link is restricted to another session"


def require_scope(booking_id: object) -> int | None:
    """The `booking_id` argument of verify/consume, checked (`InvalidInput`)."""
    return require_optional_id(booking_id, "booking_id")


def scope_refusal(
    tx: Transaction, lookup: TokenLookup, booking_id: int | None
) -> RefusalReason | None:
    """Why this token may not act on `booking_id`, or None (no scope asked, or in scope).

    A booking-bound token is in scope only for its own booking (no read). An inbox token is in
    scope for a booking whose guest e-mail is the token guest's (one read); a booking of
    someone else and a booking that does not exist give the same `WRONG_BOOKING` (no
    enumeration), and a closed booking then gives `BOOKING_CLOSED` (R7 step 3).
    """
    if booking_id is None:
        return None
    bound = lookup.token.booking_id
    if bound is not None:
        return None if bound == booking_id else RefusalReason.WRONG_BOOKING
    booking = tx.bookings.get(booking_id)
    if booking is None or booking.guest_email != lookup.guest.normalized_email:
        return RefusalReason.WRONG_BOOKING
    return RefusalReason.BOOKING_CLOSED if booking.is_closed else None


def wrong_booking() -> AccessDenied:
    """The one error of a scope refusal, whatever the reason behind it (§9.1)."""
    return AccessDenied(WRONG_BOOKING_MESSAGE)


__all__ = ["WRONG_BOOKING_MESSAGE", "require_scope", "scope_refusal", "wrong_booking"]
