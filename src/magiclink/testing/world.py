"""One test world: a unit of work, a manual clock, recorders, and the four services on them.

Every suite of magiclink's own tests builds on `World`, and a host's tests can too::

    from magiclink.testing.world import World

    world = World.build()                       # in-memory storage, manual clock at EPOCH
    booking, raw = world.book("ada@example.com")
    assert world.guests.verify_token(raw).booking_id == booking.id

The services are wired by `magiclink.build_services`, the one composition root; the world
adds only probes (what the notifier mailed, the stored token behind a raw token, the audit
trail) and `store_token`, which writes a token through the ports alone, as a host's migrated
data might hold one. `hash_token` is the SHA-256 hex by which storage knows a raw token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Generic, Self, TypeVar, cast, overload
from urllib.parse import parse_qs, urlsplit

import attrs

from magiclink import (
    AuditEntry,
    Booking,
    BookingService,
    BookingStatus,
    GuestService,
    LinkMessage,
    MagicLinkToken,
    QualityRepository,
    RatingService,
    Services,
    Settings,
    build_services,
)
from magiclink.adapters.memory import (
    InMemoryMetrics,
    InMemoryNotifier,
    InMemoryUnitOfWork,
    ManualClock,
)
from magiclink.domain._policy import generate_raw_token, hash_token
from magiclink.ports import UNSAVED_ID, Metrics, Notifier, UnitOfWork

__all__ = [
    "EPOCH",
    "MENTOR_ID",
    "Link",
    "World",
    "hash_token",
    "raw_from_url",
]

EPOCH: Final = datetime(2030, 1, 1, tzinfo=UTC)
"""The manual clock's default start (the epoch of `magiclink.testing.strategies`)."""

MENTOR_ID: Final = 7
"""The mentor `World.book` books with unless told otherwise."""

AUDIT_LIMIT: Final = 10_000

_S = TypeVar("_S")


def raw_from_url(url: str) -> str:
    """The raw token carried by a mailed link's `token` query parameter."""
    values = parse_qs(urlsplit(url).query).get("token", [])
    if len(values) != 1:
        raise AssertionError(f"the mailed URL carries {len(values)} tokens")
    return values[0]


@attrs.frozen
class Link:
    """A link as a test holds it: the raw token (mailed), its owner, and what storage knows."""

    raw: str = attrs.field(repr=False)
    guest_email: str | None = None
    booking_id: int | None = None
    token_id: int | None = None

    @property
    def token_hash(self) -> str:
        """SHA-256 hex of the raw token (what storage holds)."""
        return hash_token(self.raw)


class _Service(Generic[_S]):
    """A read-only `World` attribute: the service of `world.services` of the same name."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, world: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, world: World, owner: type[Any] | None = None) -> _S: ...

    def __get__(self, world: World | None, owner: type[Any] | None = None) -> _S | Self:
        if world is None:
            return self
        return cast(_S, getattr(world.services, self._name))


@attrs.define
class World:
    """Storage, clock, notifier, metrics, settings and the four services wired over them.

    A suite with other defaults subclasses it and sets `start` (the clock's default start)
    and `mentor_id` (whom `book` books with by default).
    """

    start: ClassVar[datetime] = EPOCH
    mentor_id: ClassVar[int] = MENTOR_ID

    uow: UnitOfWork
    clock: ManualClock
    notifier: Notifier
    metrics: InMemoryMetrics
    settings: Settings
    services: Services

    @classmethod
    def build(
        cls,
        uow: UnitOfWork | None = None,
        *,
        start: datetime | None = None,
        settings: Settings | None = None,
        notifier: Notifier | None = None,
        metrics: Metrics | None = None,
    ) -> Self:
        """A world over `uow` (a fresh in-memory one by default), its clock at `start`
        (the class's `start` by default).

        `metrics` replaces the recording `InMemoryMetrics` given to the services (e.g. a
        Prometheus adapter); `world.metrics` then stays an empty recorder.
        """
        uow = uow if uow is not None else InMemoryUnitOfWork()
        clock = ManualClock(start if start is not None else cls.start)
        recorder = InMemoryMetrics()
        notifier = notifier if notifier is not None else InMemoryNotifier()
        settings = settings if settings is not None else Settings()
        services = build_services(
            uow,
            notifier=notifier,
            clock=clock,
            settings=settings,
            metrics=metrics if metrics is not None else recorder,
        )
        return cls(uow, clock, notifier, recorder, settings, services)

    def reconfigured(self, settings: Settings) -> Self:
        """The same storage at the same time under other settings (a host's redeploy)."""
        return type(self).build(self.uow, start=self.clock.now(), settings=settings)

    # ------------------------------------------------------------------------ services

    guests = _Service[GuestService](
        "The guest service (issuing, verification, invalidation, admin)."
    )
    bookings = _Service[BookingService]("The booking lifecycle service.")
    ratings = _Service[RatingService]("The rating service.")
    quality = _Service[QualityRepository]("The incident (quality) service.")

    # ------------------------------------------------------------------------- issuing

    def book(
        self,
        email: str = "student@example.com",
        *,
        mentor_id: int | None = None,
        ahead: timedelta = timedelta(days=1),
    ) -> tuple[Booking, str]:
        """Book a session `ahead` of now with `mentor_id` (the class's by default); the
        booking and the raw token it mailed."""
        mentor = mentor_id if mentor_id is not None else self.mentor_id
        outcome = self.bookings.book_session(mentor, email, self.clock.now() + ahead)
        if not outcome.link_sent:
            raise AssertionError(f"book_session did not mail its link: {outcome}")
        return outcome.booking, self.last_raw()

    def inbox(self, email: str = "student@example.com", booking_id: int | None = None) -> Link:
        """An inbox link (`request_inbox_link`), after waiting out the request interval."""
        self.clock.advance(self.settings.request_interval)
        issued = self.guests.request_inbox_link(email, booking_id)
        return Link(issued.raw, email, booking_id, issued.token_id)

    def store_token(
        self,
        email: str,
        *,
        booking_id: int | None,
        booking_revision: int | None = None,
        expires_in: timedelta | None = None,
    ) -> str:
        """Store a token through the ports alone (no service, no audit); its raw token."""
        raw = generate_raw_token()
        now = self.clock.now()
        ttl = expires_in if expires_in is not None else self.settings.token_ttl
        with self.uow.transaction() as tx:
            guest, _ = tx.guests.get_or_create(email, now=now, last_request_at=None)
            booking = None if booking_id is None else tx.bookings.get(booking_id)
            tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=hash_token(raw),
                    guest_id=guest.id,
                    booking_id=booking_id,
                    booking_revision=booking_revision,
                    # As issuing does (§8.4): the booking's generation now.
                    link_generation=0 if booking is None else booking.link_generation,
                    expires_at=now + ttl,
                    created_at=now,
                )
            )
            tx.commit()
        return raw

    def store_booking(
        self,
        email: str,
        *,
        uid: str | None = None,
        status: BookingStatus = BookingStatus.SCHEDULED,
        revision: int = 0,
        ahead: timedelta = timedelta(days=1),
    ) -> Booking:
        """Store a 15-minute booking `ahead` of now through the ports alone (no service, no
        link, no audit), with the class's mentor; the stored booking."""
        start = self.clock.now() + ahead
        with self.uow.transaction() as tx:
            booking = tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=uid if uid is not None else generate_raw_token()[:16],
                    mentor_id=self.mentor_id,
                    guest_email=email,
                    start_time=start,
                    end_time=start + timedelta(minutes=15),
                    status=status,
                    revision=revision,
                )
            )
            tx.commit()
        return booking

    # -------------------------------------------------------------------------- probes

    @property
    def sent(self) -> list[LinkMessage]:
        """Every message the in-memory notifier recorded, oldest first."""
        if not isinstance(self.notifier, InMemoryNotifier):
            raise AssertionError("this world's notifier records nothing")
        return self.notifier.sent

    def last_raw(self) -> str:
        """The raw token of the last mailed link."""
        if not self.sent:
            raise AssertionError("no link was mailed")
        return raw_from_url(self.sent[-1].url)

    def raw_tokens(self) -> list[str]:
        """The raw token of every mailed link, oldest first."""
        return [raw_from_url(message.url) for message in self.sent]

    def token(self, raw: str) -> MagicLinkToken:
        """The stored token behind a raw token, read through the port (no audit, no metric)."""
        with self.uow.transaction(readonly=True) as tx:
            found = tx.tokens.lookup(hash_token(raw))
        if found is None:
            raise AssertionError("no stored token for this raw token")
        return found.token

    def stored_booking(self, booking_id: int) -> Booking | None:
        """The booking as stored now, or None."""
        with self.uow.transaction(readonly=True) as tx:
            return tx.bookings.get(booking_id)

    def booking(self, booking_id: int) -> Booking:
        """The booking as stored now (it must exist)."""
        booking = self.stored_booking(booking_id)
        if booking is None:
            raise AssertionError(f"booking {booking_id} is not stored")
        return booking

    def audit(self, action: str | None = None, **filters: Any) -> list[AuditEntry]:
        """Audit entries through the service, newest first, optionally of one action."""
        entries = self.guests.audit_trail(limit=AUDIT_LIMIT, **filters)
        return [entry for entry in entries if action is None or entry.action == action]

    def update_booking(self, booking_id: int, **changes: Any) -> Booking:
        """Change a stored booking through the ports alone (no invalidation runs)."""
        with self.uow.transaction() as tx:
            booking = tx.bookings.get(booking_id)
            if booking is None:
                raise AssertionError(f"booking {booking_id} is not stored")
            changed = attrs.evolve(booking, **changes)
            tx.bookings.update(changed)
            tx.commit()
        return changed
