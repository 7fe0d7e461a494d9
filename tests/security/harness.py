"""The security suite's probes on the shipped test world (`magiclink.testing.World`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from magiclink import AuditAction, AuditEntry, Booking, MagicLinkToken, Settings
from magiclink.ports import UnitOfWork
from magiclink.testing import Link
from magiclink.testing import World as _World

__all__ = ["MENTOR", "START", "Link", "World", "field_values"]

START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
MENTOR = 7


class World(_World):
    """The shipped world at `START`, with links held as `Link(raw, token_id=...)`."""

    @classmethod
    def over(
        cls,
        uow: UnitOfWork,
        *,
        revoke_on_reuse: bool = False,
        supersede_previous_links: bool = False,
    ) -> World:
        """Guest and booking services over `uow` with these two security options."""
        settings = Settings(
            revoke_on_reuse=revoke_on_reuse, supersede_previous_links=supersede_previous_links
        )
        return cls.build(uow, start=START, settings=settings)

    def redeployed(self, **options: Any) -> World:
        """The same storage at the same time under other options (a host's redeploy)."""
        return self.reconfigured(Settings(**options))

    # ------------------------------------------------------------------ issuing

    def book_link(self, email: str) -> tuple[Booking, Link]:
        """Book a session for `email` (its first link comes through `issue_booking_link`)."""
        booking, _ = self.book(email, mentor_id=MENTOR, ahead=timedelta(days=2))
        return booking, self.last_mailed(booking.id)

    def system(self, email: str, booking_id: int) -> Link:
        """A link on the system path of booking creation (`issue_booking_link`)."""
        issued = self.guests.issue_booking_link(email, booking_id)
        return Link(issued.raw, email, booking_id, issued.token_id)

    def rescheduled(self, email: str, booking_id: int) -> Link:
        """A link from `generate_token_for_rescheduled_booking` (the re-issue path)."""
        raw = self.guests.generate_token_for_rescheduled_booking(email, booking_id)
        return Link(raw, email, booking_id, self.guests.tokens_for_booking(booking_id)[-1].id)

    def last_mailed(self, booking_id: int) -> Link:
        """The link most recently mailed for the booking."""
        message = self.sent[-1]
        assert message.booking_id == booking_id
        token_id = self.guests.tokens_for_booking(booking_id)[-1].id
        return Link(self.last_raw(), message.to, booking_id, token_id)

    # ------------------------------------------------------------------- probes

    def stored(self, link: Link) -> MagicLinkToken:
        """The stored token, read through the port (no audit entry, no metric)."""
        assert link.token_id is not None
        with self.uow.transaction(readonly=True) as tx:
            token = tx.tokens.get(link.token_id)
        assert token is not None
        return token

    def is_live(self, link: Link) -> bool:
        """True when the stored token is neither invalidated, nor used, nor expired."""
        token = self.stored(link)
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
