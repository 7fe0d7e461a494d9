"""What each action's form means: the posted fields parsed into one call of `_actions`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Final

from magiclink._bootstrap import Services
from magiclink.domain._enums import IncidentType
from magiclink.domain._errors import InvalidInput
from magiclink.web import _actions

__all__ = ["SUCCESS", "Command", "parse_command", "parse_optional_id"]

Command = Callable[[Services, str], object]

# The success page of each action: its headline and what happens next.
SUCCESS: Final[Mapping[str, tuple[str, str]]] = {
    "cancel": ("Session cancelled", "Your session is cancelled. This link no longer works."),
    "reschedule": (
        "Session moved",
        "Your session has a new time. A new link for it is on its way to your inbox.",
    ),
    "rate": ("Thank you for your rating", "Your rating is saved. This link no longer works."),
    "report": ("Report received", "Thank you: the team will look into it."),
}


def parse_command(slug: str, form: Mapping[str, str], zone: tzinfo) -> Command:
    """The action `slug` with the posted `form`, ready to run on a link; `InvalidInput` if the
    form does not say what the action needs (nothing has been called yet)."""
    if slug == "cancel":
        reason = form.get("reason", "")
        return lambda services, raw: _actions.cancel(services, raw, reason)
    if slug == "reschedule":
        new_start = _parse_local_time(form.get("new_start", ""), zone)
        return lambda services, raw: _actions.reschedule(services, raw, new_start)
    if slug == "rate":
        rating = _parse_rating(form.get("rating", ""))
        feedback = form.get("feedback") or None
        return lambda services, raw: _actions.rate(services, raw, rating, feedback)
    if slug == "report":
        kind = _parse_incident_type(form.get("type", ""))
        description = form.get("description", "")
        return lambda services, raw: _actions.report(services, raw, kind, description)
    raise InvalidInput("Unknown action")


def parse_optional_id(value: str | None) -> int | None:
    """A positive integer id written in decimal digits, else None (a hint, never an error)."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    number = int(value)
    return number if number > 0 else None


def _parse_local_time(value: str, zone: tzinfo) -> datetime:
    """A `datetime-local` field (`2026-03-03T14:00`) read in the page's time zone."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("Please give the new date and time") from None
    if moment.tzinfo is not None:
        raise InvalidInput("Please give the new date and time without a time zone")
    return moment.replace(tzinfo=zone)


def _parse_rating(value: str) -> int:
    if value not in {"1", "2", "3", "4", "5"}:
        raise InvalidInput("Please choose from 1 to 5 stars")
    return int(value)


def _parse_incident_type(value: str) -> IncidentType:
    try:
        return IncidentType(value)
    except ValueError:
        raise InvalidInput("Please choose what went wrong") from None
