"""The storages of the benchmark: databases built, configured and seeded alike for our
adapter and for the raw-driver floor, and the data each timed call works on.

Every storage gets two databases with the same schema (`magiclink.adapters.sqlalchemy.metadata`),
the same connection settings and the same seed: one is used only by our services, the other
only by the floor, so neither side's writes grow the other's tables.

Seeding is bulk: one INSERT ... RETURNING per table and batch (SQLAlchemy's insertmanyvalues)
in one transaction on the SQL storages, one transaction through the ports in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from magiclink import AuditAction, Booking, BookingStatus, InvalidationReason, MagicLinkToken
from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UNSAVED_ID, NewAuditEntry, UnitOfWork

# --- What the tables hold while measuring ---------------------------------------------------

GUESTS: Final = 1_000
BACKGROUND_BOOKINGS: Final = 2_000
BACKGROUND_TOKENS: Final = 10_000  # a mix of live, used, expired and invalidated tokens
VERIFY_POOL: Final = 1_000  # live tokens whose raw form is known, verified in turn
AUDIT_ROWS: Final = 10_000
TOKEN_LIFETIME: Final = timedelta(days=1)  # seeded tokens outlive any run
SEED: Final = 20_240_601

# The connection settings of the file storage, applied to every connection of both sides.
SQLITE_PRAGMAS: Final = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")
# What our unit of work also sets on each SQLite connection (foreign keys change the cost
# of an INSERT), so the floor's connections get it too.
SQLITE_FLOOR_EXTRA: Final = ("PRAGMA foreign_keys=ON",)

DEFAULT_POSTGRES_URL: Final = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
POSTGRES_URL_VARIABLE: Final = "MAGICLINK_BENCH_POSTGRES_URL"
CONNECT_TIMEOUT_SECONDS: Final = 3
SCHEMA_PREFIX: Final = "magiclink_bench_"

STORAGES: Final = ("memory", "sqlite-file", "sqlite-memory", "postgres")


# --- References to seeded rows -----------------------------------------------------------


@dataclass(frozen=True)
class GuestRef:
    """A seeded guest."""

    id: int
    email: str


@dataclass(frozen=True)
class BookingRef:
    """A seeded, scheduled booking and the guest it belongs to."""

    id: int
    mentor_id: int
    guest: GuestRef


@dataclass(frozen=True)
class KnownToken:
    """A live token whose raw form is known (ours is given `raw`, the floor `hash`)."""

    raw: str
    hash: str


@dataclass(frozen=True)
class IssueItem:
    """One issuing call: ours asks for an inbox link for `guest`; the floor inserts `hash`."""

    guest: GuestRef
    hash: str


@dataclass
class World:
    """What was seeded into one database."""

    guests: list[GuestRef]
    bookings: list[BookingRef]
    pool: list[KnownToken]
    now: datetime


def hash_of(raw: str) -> str:
    """The stored form of a raw token (as `magiclink.hash_token`)."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


# --- Seeders: bulk inserts through the SQL tables, or through the ports ----------------------


class Seeder(Protocol):
    """Writes rows (column name -> value, as in the SQL tables) and returns their ids."""

    def guests(self, rows: Sequence[Mapping[str, Any]]) -> list[int]: ...

    def bookings(self, rows: Sequence[Mapping[str, Any]]) -> list[int]: ...

    def tokens(self, rows: Sequence[Mapping[str, Any]]) -> list[int]: ...

    def audit(self, rows: Sequence[Mapping[str, Any]]) -> None: ...


class SqlSeeder:
    """Bulk INSERT ... RETURNING id through the magiclink tables, one transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        if not rows:
            return []
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        with self.engine.begin() as connection:
            return list(connection.execute(statement, list(rows)).scalars())

    def guests(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        return self._insert(metadata.tables["magiclink_guests"], rows)

    def bookings(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        return self._insert(metadata.tables["magiclink_bookings"], rows)

    def tokens(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        return self._insert(metadata.tables["magiclink_tokens"], rows)

    def audit(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as connection:
                connection.execute(insert(metadata.tables["magiclink_audit_log"]), list(rows))


class PortSeeder:
    """The same rows written through the in-memory adapter's ports, one transaction per call."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    def guests(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        with self.uow.transaction() as tx:
            ids = [
                tx.guests.get_or_create(
                    row["normalized_email"],
                    now=row["created_at"],
                    last_request_at=row["last_request_at"],
                )[0].id
                for row in rows
            ]
            tx.commit()
        return ids

    def bookings(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        with self.uow.transaction() as tx:
            ids = [
                tx.bookings.add(
                    Booking(id=UNSAVED_ID, **{**row, "status": BookingStatus(row["status"])})
                ).id
                for row in rows
            ]
            tx.commit()
        return ids

    def tokens(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        ids = []
        with self.uow.transaction() as tx:
            for row in rows:
                token = tx.tokens.add(
                    MagicLinkToken.new(
                        token_hash=row["token_hash"],
                        guest_id=row["guest_id"],
                        booking_id=row["booking_id"],
                        booking_revision=row["booking_revision"],
                        expires_at=row["expires_at"],
                        created_at=row["created_at"],
                    )
                )
                if row["invalidated"]:
                    tx.tokens.invalidate(
                        token.id,
                        reason=InvalidationReason(row["invalidation_reason"]),
                        now=row["used_at"],
                    )
                elif row["used_at"] is not None:
                    tx.tokens.consume(token.id, now=row["used_at"])
                ids.append(token.id)
            tx.commit()
        return ids

    def audit(self, rows: Sequence[Mapping[str, Any]]) -> None:
        with self.uow.transaction() as tx:
            tx.audit.add_many([NewAuditEntry(**row) for row in rows])
            tx.commit()


# --- Seed rows -----------------------------------------------------------------------------


def token_row(
    token_hash: str,
    guest_id: int,
    booking_id: int | None,
    now: datetime,
    *,
    state: str = "live",
) -> dict[str, Any]:
    """A token row issued at `now`, in one of the states live, used, expired, invalidated."""
    created = now - timedelta(minutes=5)
    return {
        "token_hash": token_hash,
        "guest_id": guest_id,
        "booking_id": booking_id,
        "booking_revision": None if booking_id is None else 0,
        "expires_at": now - TOKEN_LIFETIME if state == "expired" else now + TOKEN_LIFETIME,
        "used_at": created if state in ("used", "invalidated") else None,
        "invalidated": state == "invalidated",
        "invalidation_reason": "booking_cancelled" if state == "invalidated" else None,
        "created_at": created,
    }


def booking_row(uid: str, guest: GuestRef, mentor_id: int, start: datetime) -> dict[str, Any]:
    """A scheduled booking row (revision 0, 15 minutes long)."""
    return {
        "uid": uid,
        "mentor_id": mentor_id,
        "guest_email": guest.email,
        "start_time": start,
        "end_time": start + timedelta(minutes=15),
        "status": str(BookingStatus.SCHEDULED),
        "revision": 0,
    }


_STATES: Final = ("invalidated", "used", "expired") + ("live",) * 7


def seed(seeder: Seeder, now: datetime) -> World:
    """Fill an empty database: guests, bookings, background tokens, the verify pool, audit."""
    rng = random.Random(SEED)
    emails = [f"guest{i:05d}@bench.example" for i in range(GUESTS)]
    guest_ids = seeder.guests(
        [
            {"normalized_email": e, "blocked": False, "last_request_at": None, "created_at": now}
            for e in emails
        ]
    )
    people = [GuestRef(i, e) for i, e in zip(guest_ids, emails, strict=True)]
    specs = [(people[i % GUESTS], 1 + i % 100) for i in range(BACKGROUND_BOOKINGS)]
    booking_ids = seeder.bookings(
        [
            booking_row(f"bg-{i}", guest, mentor, now + timedelta(hours=i))
            for i, (guest, mentor) in enumerate(specs)
        ]
    )
    booked = [BookingRef(b, m, g) for b, (g, m) in zip(booking_ids, specs, strict=True)]
    background = [booked[i % BACKGROUND_BOOKINGS] for i in range(BACKGROUND_TOKENS)]
    token_ids = seeder.tokens(
        [
            token_row(rng.randbytes(32).hex(), b.guest.id, b.id, now, state=_STATES[i % 10])
            for i, b in enumerate(background)
        ]
    )
    raws = [rng.randbytes(32).hex() for _ in range(VERIFY_POOL)]
    pool = [KnownToken(raw, hash_of(raw)) for raw in raws]
    holders = [booked[(7 * i) % BACKGROUND_BOOKINGS] for i in range(VERIFY_POOL)]
    seeder.tokens(
        [token_row(t.hash, b.guest.id, b.id, now) for t, b in zip(pool, holders, strict=True)]
    )
    seeder.audit(
        [
            {
                "guest_id": background[i].guest.id,
                "endpoint": "magiclink",
                "action": str(AuditAction.CREATE_TOKEN),
                "resource_id": str(background[i].id),
                "success": True,
                "metadata": {"token_id": token_ids[i]},
                "created_at": now,
            }
            for i in range(AUDIT_ROWS)
        ]
    )
    return World(guests=people, bookings=booked, pool=pool, now=now)


class Preparer:
    """Makes the data of timed calls, outside the timed region: fresh tokens to consume,
    new bookings holding N live tokens to invalidate or cancel, items to issue."""

    def __init__(self, seeder: Seeder, world: World) -> None:
        self.seeder = seeder
        self.world = world
        self._next = 0
        self._uids = 0

    def _cycle(self, items: Sequence[Any], k: int) -> list[Any]:
        start = self._next
        self._next += k
        return [items[(start + i) % len(items)] for i in range(k)]

    def pool(self, k: int) -> list[KnownToken]:
        """`k` tokens of the verify pool, in turn (verification changes nothing)."""
        return self._cycle(self.world.pool, k)

    def fresh_tokens(self, k: int) -> list[KnownToken]:
        """`k` new live tokens on background bookings."""
        now = datetime.now(UTC)
        raws = [os.urandom(32).hex() for _ in range(k)]
        fresh = [KnownToken(raw, hash_of(raw)) for raw in raws]
        holders = self._cycle(self.world.bookings, k)
        self.seeder.tokens(
            [token_row(t.hash, b.guest.id, b.id, now) for t, b in zip(fresh, holders, strict=True)]
        )
        return fresh

    def bookings_with_tokens(self, k: int, n: int) -> list[BookingRef]:
        """`k` new scheduled bookings, each holding `n` live tokens of its guest."""
        now = datetime.now(UTC)
        people = self._cycle(self.world.guests, k)
        mentors = [1 + (self._uids + i) % 100 for i in range(k)]
        uids = [f"prep-{self._uids + i}" for i in range(k)]
        self._uids += k
        ids = self.seeder.bookings(
            [
                booking_row(uid, guest, mentor, now + timedelta(days=1))
                for uid, guest, mentor in zip(uids, people, mentors, strict=True)
            ]
        )
        made = [BookingRef(b, m, g) for b, m, g in zip(ids, mentors, people, strict=True)]
        self.seeder.tokens(
            [token_row(os.urandom(32).hex(), b.guest.id, b.id, now) for b in made for _ in range(n)]
        )
        return made

    def issue_items(self, k: int) -> list[IssueItem]:
        """`k` issuing calls over the seeded guests, in turn, each with a fresh hash."""
        return [IssueItem(g, os.urandom(32).hex()) for g in self._cycle(self.world.guests, k)]


# --- Building the databases ----------------------------------------------------------------


def _apply_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def sqlite_engine(path: Path | None) -> Engine:
    """Our engine: a SQLite file (default QueuePool) or a private :memory: database
    (StaticPool: one connection), with the pragmas set on every new connection."""
    if path is None:
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _apply_pragmas)
    return engine


def sqlite_floor_connection(path: Path | None) -> sqlite3.Connection:
    """The floor's raw sqlite3 connection, with the same pragmas (default transaction mode:
    an implicit BEGIN before the first write, `commit()` ends it)."""
    connection = sqlite3.connect(":memory:" if path is None else str(path))
    for pragma in SQLITE_PRAGMAS + SQLITE_FLOOR_EXTRA:
        connection.execute(pragma)
    return connection


def _borrowed(connection: sqlite3.Connection) -> Engine:
    """An engine over an existing sqlite3 connection (to create and seed the floor's
    :memory: database through the same tables)."""
    return create_engine("sqlite://", creator=lambda: connection, poolclass=StaticPool)


@dataclass
class Storage:
    """One storage, ready to measure: our unit of work (and engine) and the floor's
    connection, each on its own identically seeded database."""

    name: str
    uow: UnitOfWork
    engine: Engine | None  # ours; None for the in-memory adapter
    ours_seeder: Seeder
    ours_world: World
    floor_connection: Any  # sqlite3.Connection or psycopg.Connection
    floor_dialect: str  # "sqlite" or "postgresql"
    floor_seeder: Seeder
    floor_world: World
    note: str


def postgres_url() -> URL:
    """The PostgreSQL server to use: MAGICLINK_BENCH_POSTGRES_URL, else the local default."""
    return make_url(os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL))


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_unreachable(url: URL) -> str | None:
    """Why the server cannot be used (None when it answers)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
            connection.execute("SELECT 1")
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"{url.render_as_string()} unreachable: {first}"
    return None


@contextlib.contextmanager
def open_storage(name: str, workdir: Path) -> Iterator[Storage]:
    """Build, seed and yield one storage; drop its databases afterwards."""
    now = datetime.now(UTC)
    if name == "memory":
        uow = InMemoryUnitOfWork()
        ours_seeder: Seeder = PortSeeder(uow)
        with _sqlite_floor(None) as (floor, floor_seeder, note):
            yield Storage(
                name,
                uow,
                None,
                ours_seeder,
                seed(ours_seeder, now),
                floor,
                "sqlite",
                floor_seeder,
                seed(floor_seeder, now),
                "in-memory adapter vs raw sqlite3 :memory: floor",
            )
    elif name in ("sqlite-file", "sqlite-memory"):
        path = workdir / "ours.db" if name == "sqlite-file" else None
        engine = sqlite_engine(path)
        try:
            metadata.create_all(engine)
            ours_seeder = SqlSeeder(engine)
            floor_path = workdir / "floor.db" if name == "sqlite-file" else None
            with _sqlite_floor(floor_path) as (floor, floor_seeder, note):
                yield Storage(
                    name,
                    SqlAlchemyUnitOfWork(engine),
                    engine,
                    ours_seeder,
                    seed(ours_seeder, now),
                    floor,
                    "sqlite",
                    floor_seeder,
                    seed(floor_seeder, now),
                    note,
                )
        finally:
            engine.dispose()
    elif name == "postgres":
        with _postgres(now) as storage:
            yield storage
    else:
        raise ValueError(f"unknown storage {name!r}")


@contextlib.contextmanager
def _sqlite_floor(path: Path | None) -> Iterator[tuple[sqlite3.Connection, Seeder, str]]:
    connection = sqlite_floor_connection(path)
    seeding = _borrowed(connection) if path is None else sqlite_engine(path)
    try:
        metadata.create_all(seeding)
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        sync = connection.execute("PRAGMA synchronous").fetchone()[0]
        where = ":memory:" if path is None else "file"
        yield (
            connection,
            SqlSeeder(seeding),
            f"sqlite {where}, journal_mode={mode}, synchronous={sync}",
        )
    finally:
        seeding.dispose()
        connection.close()


def schema_url(base: URL, schema: str) -> URL:
    """`base` with `schema` as the search path of every connection."""
    return base.update_query_dict({"options": f"-csearch_path={schema}"})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale_schemas(connection: Connection) -> None:
    """Drop the bench schemas a killed run left behind (their process id is gone)."""
    stale = connection.execute(
        text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
        {"p": f"{SCHEMA_PREFIX}%"},
    ).scalars()
    for schema in list(stale):
        pid = schema.removeprefix(SCHEMA_PREFIX).split("_")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def _postgres(now: datetime) -> Iterator[Storage]:
    import psycopg

    base = postgres_url()
    admin = create_engine(base, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    names = {side: f"{SCHEMA_PREFIX}{os.getpid()}_{side}" for side in ("ours", "floor")}
    with admin.begin() as connection:
        drop_stale_schemas(connection)
        for schema in names.values():
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engines = {
        side: create_engine(
            schema_url(base, schema), connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        )
        for side, schema in names.items()
    }
    floor = None
    try:
        for engine in engines.values():
            metadata.create_all(engine)
        ours_seeder, floor_seeder = SqlSeeder(engines["ours"]), SqlSeeder(engines["floor"])
        ours_world, floor_world = seed(ours_seeder, now), seed(floor_seeder, now)
        for engine in engines.values():
            with engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        floor = psycopg.connect(_libpq(schema_url(base, names["floor"])))
        version = floor.execute("SHOW server_version").fetchone()
        yield Storage(
            "postgres",
            SqlAlchemyUnitOfWork(engines["ours"]),
            engines["ours"],
            ours_seeder,
            ours_world,
            floor,
            "postgresql",
            floor_seeder,
            floor_world,
            f"PostgreSQL {version[0] if version else '?'} at {base.render_as_string()}",
        )
    finally:
        if floor is not None:
            floor.close()
        for engine in engines.values():
            engine.dispose()
        with admin.begin() as connection:
            for schema in names.values():
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for the SQLite files, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="magiclink-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
