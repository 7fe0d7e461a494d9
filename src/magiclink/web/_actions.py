"""The four guest actions of the page (§8), in one place.

Each calls the §8 atomic link action (`cancel_with_link`, `reschedule_with_link`,
`rate_with_link`, `report_with_link`: check, act and kill in one transaction) when the
services have it. Until those land, a FALLBACK runs verify → plain service call → consume.
It keeps §8.2 for refusals (a refused action consumed nothing, so the link stays usable) but
is not atomic under races. TODO(merge): delete `_fallback` and the `getattr` branches once
the §8 actions are on main.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from magiclink._bootstrap import Services
from magiclink.domain.enums import IncidentType
from magiclink.domain.errors import InvalidInput, MagicLinkError
from magiclink.domain.records import Booking, Guest, Requester

__all__ = ["cancel", "rate", "report", "reschedule"]

T = TypeVar("T")


def cancel(services: Services, raw: str, reason: str) -> None:
    """Cancel the link's booking as its student (§8.1)."""
    action = getattr(services.bookings, "cancel_with_link", None)
    if action is not None:
        action(raw, reason)
        return
    _fallback(
        services,
        raw,
        lambda booking, guest: services.bookings.cancel_session(
            booking.id, reason, "student", Requester(email=guest.normalized_email)
        ),
    )


def reschedule(services: Services, raw: str, new_start: datetime) -> Any:
    """Move the link's booking; its new link is mailed (R2, §8.1)."""
    action = getattr(services.bookings, "reschedule_with_link", None)
    if action is not None:
        return action(raw, new_start)
    return _fallback(
        services,
        raw,
        lambda booking, guest: services.bookings.reschedule_session(
            booking.id, new_start, Requester(email=guest.normalized_email)
        ),
    )


def rate(services: Services, raw: str, rating: int, feedback: str | None) -> Any:
    """Rate the link's booking (R3, §8.1)."""
    action = getattr(services.ratings, "rate_with_link", None)
    if action is not None:
        return action(raw, rating, feedback)
    return _fallback(
        services,
        raw,
        lambda booking, _guest: services.ratings.create_rating(
            booking.id, str(booking.mentor_id), rating, feedback
        ),
    )


def report(services: Services, raw: str, type: IncidentType, description: str) -> Any:
    """Report a problem with the link's booking (R4, §8.1)."""
    action = getattr(services.quality, "report_with_link", None)
    if action is not None:
        return action(raw, type, description)
    return _fallback(
        services,
        raw,
        lambda booking, _guest: services.quality.create_incident(
            str(booking.mentor_id), booking.uid, type, description
        ),
    )


def _fallback(services: Services, raw: str, act: Callable[[Booking, Guest], T]) -> T:
    """FALLBACK until §8 lands: verify, act, then spend the link (see the module docstring)."""
    verified = services.guests.verify_token(raw)
    booking_id = verified.token.booking_id
    booking = None if booking_id is None else services.bookings.get_booking(booking_id)
    if booking is None:
        raise InvalidInput("This link is not tied to a session")
    result = act(booking, verified.guest)
    # The action's own invalidation (R1-R4) has usually killed the link already.
    with contextlib.suppress(MagicLinkError):
        services.guests.consume_token(raw)
    return result
