"""A seeded world for the reliability tests, storage snapshots, and the audit invariant.

`World.build(uow)` wires the four services over any unit of work, with a manual clock and
an in-memory notifier, and `World.seed()` gives it a booking with four links of two guests
(one consumed) and a second booking whose links nothing may touch. `rows(uow)` copies every
stored row of an in-memory or SQLAlchemy storage, so that "wrote nothing" is one equality.
`audit_violations(world, booking_ids)` lists every break of R8: an invalidated token
without its `INVALIDATE_TOKEN` entry, an entry for tokens that were not invalidated, a
token invalidated without `used_at`.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Engine, create_engine, select

from magiclink import (
    AuditAction,
    Booking,
    BookingService,
    GuestService,
    QualityRepository,
    RatingService,
    Requester,
)
from magiclink.adapters.memory import (
    InMemoryMetrics,
    InMemoryNotifier,
    InMemoryUnitOfWork,
    ManualClock,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UnitOfWork
from magiclink.testing.properties import raw_from_url

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
MENTOR = 41
STUDENT = "student@example.com"
OTHER = "other@example.com"
THIRD = "third@example.com"
PROFILE = "mentor-profile-41"


def sha256_hex(raw: str) -> str:
    """SHA-256 hex of a raw token: what storage holds instead of it."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


@attrs.define
class Seed:
    """What `World.seed` stored: the booking under test, its links, and a bystander."""

    booking: Booking
    links: list[str]
    live: list[str]
    bystander: Booking
    bystander_link: str


@attrs.define
class World:
    """Storage, clock, notifier, metrics and every service, wired as a host would."""

    uow: UnitOfWork
    clock: ManualClock
    notifier: InMemoryNotifier
    metrics: InMemoryMetrics
    guests: GuestService
    bookings: BookingService
    ratings: RatingService
    quality: QualityRepository

    @classmethod
    def build(cls, uow: UnitOfWork, start: datetime = T0) -> World:
        clock = ManualClock(start)
        metrics = InMemoryMetrics()
        notifier = InMemoryNotifier()
        guests = GuestService(uow, clock=clock, metrics=metrics)
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

    def last_link(self) -> str:
        """The raw token of the last mailed link."""
        return raw_from_url(self.notifier.sent[-1].url)

    def book(self, email: str = STUDENT, mentor_id: int = MENTOR) -> tuple[Booking, str]:
        outcome = self.bookings.book_session(mentor_id, email, self.clock.now() + timedelta(days=1))
        assert outcome.link_sent
        return outcome.booking, self.last_link()

    def craft_link(self, email: str, booking: Booking) -> str:
        """A link of another guest bound to `booking`, stored through the ports alone
        (data a host migrated in): the invalidation must audit one entry per guest."""
        raw = secrets.token_hex(32)
        now = self.clock.now()
        with self.uow.transaction() as tx:
            guest, _ = tx.guests.get_or_create(email, now=now, last_request_at=None)
            tx.tokens.add(
                token_hash=sha256_hex(raw),
                guest_id=guest.id,
                booking_id=booking.id,
                booking_revision=booking.revision,
                expires_at=now + self.guests.settings.token_ttl,
                created_at=now,
            )
            tx.commit()
        return raw

    def seed(self) -> Seed:
        """A booking with four links (booking link, inbox link, consumed inbox link, another
        guest's link) and a bystander booking with one link."""
        booking, first = self.book()
        inbox = self.guests.request_inbox_link(STUDENT, booking.id).raw
        self.clock.advance(self.guests.settings.request_interval)
        consumed = self.guests.request_inbox_link(STUDENT, booking.id).raw
        self.guests.consume_token(consumed)
        other = self.craft_link(OTHER, booking)
        bystander, bystander_link = self.book(THIRD, mentor_id=MENTOR + 1)
        self.clock.advance(self.guests.settings.request_interval)
        return Seed(
            booking=booking,
            links=[first, inbox, consumed, other],
            live=[first, inbox, other],
            bystander=bystander,
            bystander_link=bystander_link,
        )

    def stored_booking(self, booking_id: int) -> Booking | None:
        with self.uow.transaction(readonly=True) as tx:
            return tx.bookings.get(booking_id)

    def invalidate_entries(self, booking_id: int) -> list[Any]:
        return [
            e
            for e in self.guests.audit_trail(booking_id=booking_id, limit=10_000)
            if e.action == AuditAction.INVALIDATE_TOKEN
        ]


def audit_violations(world: World, booking_ids: list[int]) -> list[str]:
    """Every break of R8 / §5.2 among these bookings' tokens and audit entries."""
    problems: list[str] = []
    for booking_id in booking_ids:
        tokens = world.guests.tokens_for_booking(booking_id)
        invalidated: Counter[tuple[int, str]] = Counter()
        for token in tokens:
            if token.invalidated:
                invalidated[(token.guest_id, str(token.invalidation_reason))] += 1
                if token.used_at is None:
                    problems.append(f"token {token.id} invalidated without used_at")
        audited: Counter[tuple[int, str]] = Counter()
        for entry in world.invalidate_entries(booking_id):
            if not entry.success or entry.metadata.get("count", 0) < 1:
                problems.append(f"audit entry {entry.id} malformed: {entry.metadata}")
            audited[(entry.guest_id, entry.metadata["reason"])] += entry.metadata["count"]
        if invalidated != audited:
            problems.append(
                f"booking {booking_id}: invalidated {dict(invalidated)} != audited {dict(audited)}"
            )
    return problems


# --- storage snapshots ---------------------------------------------------------------------


def rows(uow: UnitOfWork) -> dict[str, list[Any]]:
    """Every stored row, table by table, in a form comparable between two calls."""
    inner = getattr(uow, "inner", uow)
    if isinstance(inner, InMemoryUnitOfWork):
        store = inner._store
        return {
            name: sorted(value.items(), key=repr)
            for name, value in vars(store).items()
            if isinstance(value, dict)
        }
    assert isinstance(inner, SqlAlchemyUnitOfWork)
    return table_rows(inner.engine)


def table_rows(engine: Engine) -> dict[str, list[Any]]:
    """Every row of every magiclink table, by primary key."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(
                    select(table).order_by(*table.primary_key.columns)
                ).all()
            ]
            for table in metadata.sorted_tables
        }


# --- fresh SQLite files ----------------------------------------------------------------------


class SqliteFiles:
    """Fresh SQLite files with the magiclink tables, copied from one template file."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._template = directory / "template.db"
        self._count = 0
        self.engines: list[Engine] = []
        engine = create_engine(f"sqlite:///{self._template}")
        metadata.create_all(engine)
        engine.dispose()

    def engine(self) -> Engine:
        self._count += 1
        path = self._directory / f"db{self._count}.db"
        shutil.copyfile(self._template, path)
        engine = create_engine(f"sqlite:///{path}")
        self.engines.append(engine)
        return engine

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()
        self.engines.clear()


def mentor() -> Requester:
    return Requester(user_id=MENTOR)


def student() -> Requester:
    return Requester(email=STUDENT)
