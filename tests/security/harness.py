"""A small world of services on one unit of work, and the probes the security tests share."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from magiclink import (
    AuditAction,
    AuditEntry,
    Booking,
    BookingService,
    GuestService,
    MagicLinkToken,
    Settings,
)
from magiclink.adapters.memory import InMemoryMetrics, InMemoryNotifier, ManualClock
from magiclink.ports import UnitOfWork

START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
MENTOR = 7


@attrs.frozen
class Link:
    """An issued link as a test holds it: the raw token (mailed) and the stored token's id."""

    raw: str = attrs.field(repr=False)
    token_id: int


class World:
    """Guest and booking services sharing one unit of work, a manual clock and recorders."""

    def __init__(
        self,
        uow: UnitOfWork,
        *,
        revoke_on_reuse: bool = False,
        supersede_previous_links: bool = False,
    ) -> None:
        self.uow = uow
        self.clock = ManualClock(START)
        self.metrics = InMemoryMetrics()
        self.outbox = InMemoryNotifier()
        self.settings = Settings(
            revoke_on_reuse=revoke_on_reuse, supersede_previous_links=supersede_previous_links
        )
        self.guests = GuestService(
            uow, clock=self.clock, settings=self.settings, metrics=self.metrics
        )
        self.bookings = BookingService(uow, self.guests, notifier=self.outbox)

    def reconfigured(self, **options: bool) -> World:
        """The same storage at the same time under other options (a host's redeploy)."""
        other = World(self.uow, **options)
        other.clock.set(self.clock.now())
        return other

    # ------------------------------------------------------------------ issuing

    def book(self, email: str) -> tuple[Booking, Link]:
        """Book a session for `email` (its first link comes through `issue_booking_link`)."""
        outcome = self.bookings.book_session(MENTOR, email, self.clock.now() + timedelta(days=2))
        assert outcome.link_sent
        return outcome.booking, self.last_mailed(outcome.booking.id)

    def inbox(self, email: str, booking_id: int | None = None) -> Link:
        """A guest-initiated link, after waiting out the request interval."""
        self.clock.advance(self.settings.request_interval)
        issued = self.guests.request_inbox_link(email, booking_id)
        return Link(issued.raw, issued.token_id)

    def system(self, email: str, booking_id: int) -> Link:
        """A link on the system path of booking creation (`issue_booking_link`)."""
        issued = self.guests.issue_booking_link(email, booking_id)
        return Link(issued.raw, issued.token_id)

    def rescheduled(self, email: str, booking_id: int) -> Link:
        """A link from `generate_token_for_rescheduled_booking` (the re-issue path)."""
        raw = self.guests.generate_token_for_rescheduled_booking(email, booking_id)
        return Link(raw, self.guests.tokens_for_booking(booking_id)[-1].id)

    def last_mailed(self, booking_id: int) -> Link:
        """The link most recently mailed for the booking."""
        message = self.outbox.sent[-1]
        assert message.booking_id == booking_id
        raw = message.url.split("token=", 1)[1]
        return Link(raw, self.guests.tokens_for_booking(booking_id)[-1].id)

    # ------------------------------------------------------------------- probes

    def token(self, link: Link) -> MagicLinkToken:
        """The stored token, read through the port (no audit entry, no metric)."""
        with self.uow.transaction(readonly=True) as tx:
            token = tx.tokens.get(link.token_id)
        assert token is not None
        return token

    def is_live(self, link: Link) -> bool:
        """True when the stored token is neither invalidated, nor used, nor expired."""
        token = self.token(link)
        return (
            not token.invalidated and token.used_at is None and token.expires_at > self.clock.now()
        )

    def entries(
        self, action: AuditAction, *, booking_id: int | None = None, guest_id: int | None = None
    ) -> list[AuditEntry]:
        """Audit entries with this action, newest first (all of them when no filter is given)."""
        with self.uow.transaction(readonly=True) as tx:
            trail = tx.audit.list(booking_id=booking_id, guest_id=guest_id, limit=10_000)
        return [entry for entry in trail if entry.action == action]

    def reuse_count(self, operation: str | None = None) -> float:
        """How many verifications were counted with the `reuse` outcome."""
        labels = {"outcome": "reuse"}
        if operation is not None:
            labels["operation"] = operation
        return self.metrics.count("magiclink_verifications_total", **labels)


def field_values(record: logging.LogRecord) -> list[Any]:
    """The message and every attribute of a log record, for leak checks."""
    return [record.getMessage(), *vars(record).values()]
