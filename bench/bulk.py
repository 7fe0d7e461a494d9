"""Big token tables, made fast, for the scale and purge benchmarks (issue 15.3).

`open_database(storage, scratch, tag)` builds one database of ours (a SQLite file with the
bench's pragmas, or a PostgreSQL schema), seeded by `storages.seed` as bench/run.py seeds
its databases: 1,000 guests, 2,000 bookings, 11,000 tokens (10,000 background + the 1,000
verify pool), 10,000 audit entries. `add_tokens` then grows the token table by the database's
own work: one INSERT ... SELECT over a generated series (a recursive CTE on SQLite,
`generate_series` on PostgreSQL), random 64-hex hashes, in one transaction; then PostgreSQL
is VACUUM ANALYZEd (the planner and the visibility map know the table's size) and SQLite's
WAL checkpointed into the file (TRUNCATE), before anything is timed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, text
from storages import (
    BACKGROUND_BOOKINGS,
    CONNECT_TIMEOUT_SECONDS,
    GUESTS,
    SCHEMA_PREFIX,
    SqlSeeder,
    World,
    drop_stale_schemas,
    postgres_unreachable,
    postgres_url,
    schema_url,
    seed,
    sqlite_engine,
)

from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata

SCALE_STORAGES: Final = ("sqlite-file", "postgres")
SEEDED_TOKENS: Final = 11_000  # what `storages.seed` stores: 10,000 background + 1,000 pool
EXPIRED_AGO: Final = timedelta(days=2)  # "expired" filler: past any purge cut-off we use

# Token x of the filler: booking b0 + x % bookings, that booking's guest g0 + x % guests
# (seed() gives booking i the guest i % GUESTS); state by x % 10 as seed() does
# (0 invalidated, 1 used, 2 expired, else live), or every one expired.
_COLUMNS: Final = (
    "token_hash, guest_id, booking_id, booking_revision, expires_at, used_at, invalidated, "
    "invalidation_reason, created_at, link_generation"
)
_VALUES: Final = (
    ":g0 + x % :guests, :b0 + x % :bookings, 0, "
    "CASE WHEN :all_expired = 1 OR x % 10 = 2 THEN :expired ELSE :expires END, "
    "CASE WHEN :all_expired = 0 AND x % 10 IN (0, 1) THEN :created END, "
    "{flag}, "
    "CASE WHEN :all_expired = 0 AND x % 10 = 0 THEN 'booking_cancelled' END, "
    ":created, 0"
)
_SQLITE_FILL: Final = (
    "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < :count) "
    f"INSERT INTO magiclink_tokens ({_COLUMNS}) "
    "SELECT lower(hex(randomblob(32))), "
    + _VALUES.format(flag="CASE WHEN :all_expired = 0 AND x % 10 = 0 THEN 1 ELSE 0 END")
    + " FROM n"
)
_POSTGRES_FILL: Final = (
    f"INSERT INTO magiclink_tokens ({_COLUMNS}) "
    "SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), "
    + _VALUES.format(flag="(:all_expired = 0 AND x % 10 = 0)")
    + " FROM generate_series(0, :count - 1) AS n(x)"
)


@dataclass
class Database:
    """One seeded database of ours: its engine, unit of work, seeder and what it holds."""

    storage: str
    engine: Engine
    uow: SqlAlchemyUnitOfWork
    seeder: SqlSeeder
    world: World
    note: str


def unreachable(storage: str) -> str | None:
    """Why a storage is skipped (PostgreSQL not answering), or None."""
    return postgres_unreachable(postgres_url()) if storage == "postgres" else None


@contextlib.contextmanager
def open_database(storage: str, scratch: Path, tag: str) -> Iterator[Database]:
    """Build and seed one database; drop it afterwards."""
    now = datetime.now(UTC)
    if storage == "sqlite-file":
        engine = sqlite_engine(scratch / f"{tag}.db")
        try:
            metadata.create_all(engine)
            with engine.connect() as connection:
                mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
                sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            seeder = SqlSeeder(engine)
            note = f"sqlite file, journal_mode={mode}, synchronous={sync}"
            world = seed(seeder, now)
            yield Database(storage, engine, SqlAlchemyUnitOfWork(engine), seeder, world, note)
        finally:
            engine.dispose()
    elif storage == "postgres":
        with _postgres_database(tag, now) as database:
            yield database
    else:
        raise ValueError(f"storage {storage!r} is not one of {SCALE_STORAGES}")


@contextlib.contextmanager
def _postgres_database(tag: str, now: datetime) -> Iterator[Database]:
    base = postgres_url()
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{tag}"
    timeout = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    admin = create_engine(base, connect_args=timeout)
    with admin.begin() as connection:
        drop_stale_schemas(connection)
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = create_engine(schema_url(base, schema), connect_args=timeout)
    try:
        metadata.create_all(engine)
        seeder = SqlSeeder(engine)
        world = seed(seeder, now)
        _vacuum_analyze(engine)
        with engine.connect() as connection:
            version = connection.exec_driver_sql("SHOW server_version").scalar()
        note = f"PostgreSQL {version} at {base.render_as_string()}"
        yield Database("postgres", engine, SqlAlchemyUnitOfWork(engine), seeder, world, note)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _vacuum_analyze(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy stores for a DATETIME on SQLite: naive UTC, with microseconds.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def add_tokens(database: Database, count: int, *, all_expired: bool = False) -> float:
    """Add `count` tokens (the seed's mix of states, or all expired `EXPIRED_AGO` ago) in
    one statement and one transaction; seconds taken (VACUUM ANALYZE included on PostgreSQL)."""
    if count <= 0:
        return 0.0
    world = database.world
    guest_ids = sorted(g.id for g in world.guests)
    booking_ids = sorted(b.id for b in world.bookings)
    # The arithmetic mapping needs the seed's contiguous ids and its booking -> guest rule.
    assert guest_ids == list(range(guest_ids[0], guest_ids[0] + GUESTS)), "guest ids"
    assert booking_ids == list(range(booking_ids[0], booking_ids[0] + BACKGROUND_BOOKINGS))
    assert BACKGROUND_BOOKINGS % GUESTS == 0
    now = datetime.now(UTC)
    moments = {
        "created": (now - EXPIRED_AGO if all_expired else now) - timedelta(minutes=5),
        "expires": now + timedelta(days=1),
        "expired": now - EXPIRED_AGO,
    }
    postgres = database.storage == "postgres"
    params: dict[str, object] = {
        "count": count,
        "g0": guest_ids[0],
        "guests": GUESTS,
        "b0": booking_ids[0],
        "bookings": BACKGROUND_BOOKINGS,
        "all_expired": int(all_expired),
        **{k: v if postgres else _sqlite_time(v) for k, v in moments.items()},
    }
    started = time.perf_counter()
    with database.engine.begin() as connection:
        connection.execute(text(_POSTGRES_FILL if postgres else _SQLITE_FILL), params)
    if postgres:
        _vacuum_analyze(database.engine)
    else:  # fold the fill into the database file: no reader pays for a WAL of 10^6 rows
        with database.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


def token_count(database: Database) -> int:
    """Rows in the token table now."""
    with database.engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM magiclink_tokens").scalar())


__all__ = [
    "EXPIRED_AGO",
    "SCALE_STORAGES",
    "SEEDED_TOKENS",
    "Database",
    "add_tokens",
    "open_database",
    "token_count",
    "unreachable",
]


def write_results(
    output: Path,
    script: str,
    mode: str,
    started: tuple[float, tuple[float, float, float]],
    fields: dict[str, Any],
) -> None:
    """Write a benchmark's JSON document (command, mode, time, wall time, environment with the
    load averages at start and end, then `fields`) and print where it went.

    `started` is `(time.perf_counter(), os.getloadavg())` taken when the run began."""
    from run import environment  # run.py imports nothing from here; imported late all the same

    began, load = started
    wall = time.perf_counter() - began
    document = {
        "command": " ".join([script, *sys.argv[1:]]),
        "mode": mode,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "environment": {**environment(), "load_average": [list(load), list(os.getloadavg())]},
        **fields,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"Wrote {output}\nWall time {wall:.1f} s")
