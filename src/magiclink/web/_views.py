"""Rendering of the guest's page: Jinja2 templates with autoescape on, and the booking in words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from importlib import resources
from typing import Any, Final

import attrs
from jinja2 import Environment, PackageLoader, StrictUndefined

from magiclink.domain._enums import BookingStatus, IncidentType
from magiclink.domain._records import Booking

__all__ = [
    "ACTIONS",
    "INCIDENT_LABELS",
    "Action",
    "BookingView",
    "describe",
    "render",
    "stylesheet",
]

# Every value reaches the page escaped: autoescape is on for every template, whatever its name.
_ENV: Final = Environment(
    loader=PackageLoader("magiclink.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

STATUS_WORDS: Final = {
    BookingStatus.SCHEDULED: "Scheduled",
    BookingStatus.COMPLETED: "Completed",
    BookingStatus.CANCELLED: "Cancelled",
    BookingStatus.NO_SHOW: "Missed (no-show)",
}
INCIDENT_LABELS: Final = {
    IncidentType.NO_SHOW: "The mentor did not show up",
    IncidentType.LATE: "The mentor was late",
    IncidentType.INAPPROPRIATE_BEHAVIOR: "Inappropriate behaviour",
    IncidentType.TECHNICAL_ISSUE: "A technical problem",
    IncidentType.OTHER: "Something else",
}


@attrs.frozen
class Action:
    """One action of the page: its URL segment and its button's visible name (§12)."""

    slug: str
    label: str
    title: str


ACTIONS: Final = {
    action.slug: action
    for action in (
        Action("cancel", "Cancel session", "Cancel this session"),
        Action("reschedule", "Reschedule", "Move this session"),
        Action("rate", "Rate this session", "Rate this session"),
        Action("report", "Report a problem", "Report a problem"),
    )
}


@attrs.frozen
class BookingView:
    """A booking as the guest reads it."""

    mentor: str
    when: str
    status: str
    status_code: str


def describe(booking: Booking, mentor_name: Callable[[Booking], str], zone: tzinfo) -> BookingView:
    """The booking in words: its mentor, its time in the page's time zone, its status."""
    return BookingView(
        mentor=mentor_name(booking),
        when=time_in_words(booking.start_time, booking.end_time, zone),
        status=STATUS_WORDS[booking.status],
        status_code=str(booking.status),
    )


def time_in_words(start: datetime, end: datetime, zone: tzinfo) -> str:
    """E.g. `Tuesday 3 March 2026, 14:00 to 14:15 (UTC)`."""
    start, end = start.astimezone(zone), end.astimezone(zone)
    day = f"{start:%A} {start.day} {start:%B %Y}"
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%A} {end.day} {end:%B %H:%M}"
    return f"{day}, {start:%H:%M} to {until} ({start.tzname() or zone})"


def render(template: str, **context: Any) -> bytes:
    """The named template rendered with `context`, as UTF-8."""
    return _ENV.get_template(template).render(**context).encode("utf-8")


def stylesheet() -> bytes:
    """The page's one stylesheet (served same-origin, so the CSP needs no external source)."""
    return resources.files("magiclink.web").joinpath("static/page.css").read_bytes()
