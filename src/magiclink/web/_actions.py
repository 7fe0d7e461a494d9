"""The four guest actions of the page: each is the §8 atomic link action.

`cancel_with_link`, `reschedule_with_link`, `rate_with_link` and `report_with_link` check the
link, act and kill the booking's links in one transaction (§8.1); a refused action writes
nothing and leaves the link usable (§8.2); of racing submissions exactly one acts (§8.3).
"""

from __future__ import annotations

from datetime import datetime

from magiclink._bootstrap import Services
from magiclink.domain._enums import IncidentType
from magiclink.domain._records import Incident, Rating, RescheduleOutcome

__all__ = ["cancel", "rate", "report", "reschedule"]


def cancel(services: Services, raw: str, reason: str) -> None:
    """Cancel the link's booking as its student (§8.1)."""
    services.bookings.cancel_with_link(raw, reason)


def reschedule(services: Services, raw: str, new_start: datetime) -> RescheduleOutcome:
    """Move the link's booking; its new link is mailed (R2, §8.1)."""
    return services.bookings.reschedule_with_link(raw, new_start)


def rate(services: Services, raw: str, rating: int, feedback: str | None) -> Rating:
    """Rate the link's booking (R3, §8.1)."""
    return services.ratings.rate_with_link(raw, rating, feedback)


def report(services: Services, raw: str, type: IncidentType, description: str) -> Incident:
    """Report a problem with the link's booking (R4, §8.1)."""
    return services.quality.report_with_link(raw, type, description)
