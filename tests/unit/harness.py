"""A small world for service tests: in-memory storage, manual clock, and every service."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
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
    QualityRepository,
    RatingService,
    Settings,
)
from magiclink.adapters.memory import (
    InMemoryMetrics,
    InMemoryNotifier,
    InMemoryUnitOfWork,
    ManualClock,
)
from magiclink.ports import Notifier, UnitOfWork
from magiclink.testing.properties import raw_from_url

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
INTERVAL = timedelta(seconds=60)
MENTOR = 41
STUDENT = "student@example.com"
STRANGER = "stranger@example.com"


def hash_of(raw: str) -> str:
    """SHA-256 hex of a raw token, as storage holds it."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


@attrs.define
class Harness:
    """Storage, clock, notifier, metrics and the four services wired as a host would."""

    uow: UnitOfWork
    clock: ManualClock
    notifier: Notifier
    metrics: InMemoryMetrics
    guests: GuestService
    bookings: BookingService
    ratings: RatingService
    quality: QualityRepository

    @classmethod
    def build(
        cls,
        uow: UnitOfWork | None = None,
        *,
        settings: Settings | None = None,
        guest_service: Callable[..., GuestService] = GuestService,
        notifier: Notifier | None = None,
    ) -> Harness:
        """Wire the services over `uow` (a fresh in-memory one by default)."""
        uow = uow if uow is not None else InMemoryUnitOfWork()
        clock = ManualClock(T0)
        metrics = InMemoryMetrics()
        notifier = notifier if notifier is not None else InMemoryNotifier()
        guests = guest_service(uow, clock=clock, settings=settings, metrics=metrics)
        return cls(
            uow=uow,
            clock=clock,
            notifier=notifier,
            metrics=metrics,
            guests=guests,
            bookings=BookingService(uow, guests, notifier=notifier),
            ratings=RatingService(uow, guests),
            quality=QualityRepository(uow, guests),
        )

    @property
    def sent(self) -> list[Any]:
        """Messages the in-memory notifier recorded."""
        assert isinstance(self.notifier, InMemoryNotifier)
        return self.notifier.sent

    def book(self, email: str = STUDENT, *, mentor_id: int = MENTOR) -> tuple[Booking, str]:
        """Book a session starting tomorrow; the booking and the raw token it mailed."""
        outcome = self.bookings.book_session(mentor_id, email, self.clock.now() + timedelta(days=1))
        assert outcome.link_sent
        return outcome.booking, raw_from_url(self.sent[-1].url)

    def inbox(self, email: str = STUDENT, booking_id: int | None = None) -> str:
        """Request an inbox link after waiting out the rate limit; its raw token."""
        self.clock.advance(self.guests.settings.request_interval)
        return self.guests.request_inbox_link(email, booking_id).raw

    def token(self, raw: str) -> MagicLinkToken:
        """The stored token behind a raw token."""
        with self.uow.transaction(readonly=True) as tx:
            found = tx.tokens.lookup(hash_of(raw))
        assert found is not None
        return found.token

    def booking(self, booking_id: int) -> Booking:
        """The booking as stored now."""
        with self.uow.transaction(readonly=True) as tx:
            booking = tx.bookings.get(booking_id)
        assert booking is not None
        return booking

    def audit(self, action: str | None = None, **filters: Any) -> list[AuditEntry]:
        """Audit entries, newest first, optionally of one action."""
        entries = self.guests.audit_trail(limit=10_000, **filters)
        return [e for e in entries if action is None or e.action == action]

    def verify_audits(self) -> list[AuditEntry]:
        """The VERIFY_TOKEN entries, newest first."""
        return self.audit(AuditAction.VERIFY_TOKEN)

    def craft_token(
        self,
        email: str,
        *,
        booking_id: int | None,
        booking_revision: int | None = None,
        expires_in: timedelta = TTL,
    ) -> str:
        """Store a token through the ports alone; its raw token."""
        raw = secrets.token_hex(32)
        now = self.clock.now()
        with self.uow.transaction() as tx:
            guest, _ = tx.guests.get_or_create(email, now=now, last_request_at=None)
            tx.tokens.add(
                token_hash=hash_of(raw),
                guest_id=guest.id,
                booking_id=booking_id,
                booking_revision=booking_revision,
                expires_at=now + expires_in,
                created_at=now,
            )
            tx.commit()
        return raw

    def update_booking(self, booking_id: int, **changes: Any) -> Booking:
        """Change a booking through the ports alone (no invalidation runs)."""
        with self.uow.transaction() as tx:
            booking = tx.bookings.get(booking_id)
            assert booking is not None
            changed = attrs.evolve(booking, **changes)
            tx.bookings.update(changed)
            tx.commit()
        return changed


def snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """Every table and index of an in-memory storage, copied (records are immutable)."""
    assert isinstance(uow, InMemoryUnitOfWork)
    store = uow._store
    return {name: dict(value) for name, value in vars(store).items() if isinstance(value, dict)}


def inner_snapshot(uow: UnitOfWork) -> dict[str, Any]:
    """`snapshot` of the in-memory storage under a wrapper (e.g. `FaultyUnitOfWork`)."""
    return snapshot(getattr(uow, "inner", uow))
