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

import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from sqlalchemy import Engine, create_engine, select

from magiclink import AuditAction, Booking, Requester
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UnitOfWork
from magiclink.testing import World as _World
from magiclink.testing import hash_token

__all__ = [
    "MENTOR",
    "OTHER",
    "PROFILE",
    "STUDENT",
    "T0",
    "THIRD",
    "Seed",
    "SqliteFiles",
    "World",
    "audit_violations",
    "mentor",
    "rows",
    "sha256_hex",
    "student",
    "table_rows",
]

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
MENTOR = 41
STUDENT = "student@example.com"
OTHER = "other@example.com"
THIRD = "third@example.com"
PROFILE = "mentor-profile-41"

sha256_hex = hash_token
"""SHA-256 hex of a raw token: what storage holds instead of it (the shipped `hash_token`)."""


@attrs.define
class Seed:
    """What `World.seed` stored: the booking under test, its links, and a bystander."""

    booking: Booking
    links: list[str]
    live: list[str]
    bystander: Booking
    bystander_link: str


class World(_World):
    """The shipped world at `T0`, booking with `MENTOR`, plus the seed of the reliability tests."""

    start = T0
    mentor_id = MENTOR

    def craft_link(self, email: str, booking: Booking) -> str:
        """A link of another guest bound to `booking`, stored through the ports alone
        (data a host migrated in): the invalidation must audit one entry per guest."""
        return self.store_token(email, booking_id=booking.id, booking_revision=booking.revision)

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
            # Index lists are appended to in place: copy them.
            name: sorted(
                ((key, tuple(v) if isinstance(v, list) else v) for key, v in value.items()),
                key=repr,
            )
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
