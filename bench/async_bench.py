"""Async verify and consume on PostgreSQL through asyncpg, against the raw asyncpg floor, and
the cost of the greenlet bridge against the sync path (SPEC §10, issue 17.5).

Subjects, all in one run on one server and schema:

* floor: a held asyncpg connection running the one statement verify needs (the token lookup
  magiclink itself sends, captured from a real verify) — the least any verify can cost;
  for consume, that lookup plus the conditional UPDATE, in one transaction;
* async (asyncpg): `AsyncGuestService.verify_token` / `consume_token` over
  `AsyncSqlAlchemyUnitOfWork(create_async_engine("postgresql+asyncpg://..."))`;
* async (psycopg) and sync (psycopg): the same driver both ways, so their ratio is the
  bridge's cost on a real database;
* bridge alone: `verify_token` in memory, async over sync (no I/O at all).

Prints medians per call and the ratios. `--quick` runs fewer calls. Run by hand:
`python bench/async_bench.py --quick` (needs the PostgreSQL of MAGICLINK_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from magiclink import MagicLinkToken, Settings, build_services, generate_raw_token, hash_token
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork, ManualClock
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.asyncio import (
    AsyncInMemoryNotifier,
    AsyncSqlAlchemyUnitOfWork,
    build_async_services,
)
from magiclink.ports import UnitOfWork

URL = os.environ.get(
    "MAGICLINK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
SCHEMA = f"magiclink_bench_async_{os.getpid()}"


def _seed(uow: UnitOfWork, count: int) -> list[str]:
    """`count` live inbox tokens of one guest; their raw values."""
    raws = [generate_raw_token() for _ in range(count)]
    with uow.transaction() as tx:
        guest, _ = tx.guests.get_or_create("bench@example.com", now=NOW, last_request_at=None)
        for raw in raws:
            tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=hash_token(raw),
                    guest_id=guest.id,
                    booking_id=None,
                    booking_revision=None,
                    expires_at=NOW + timedelta(days=1),
                    created_at=NOW,
                )
            )
        tx.commit()
    return raws


async def _time_async(call: Callable[[int], Awaitable[Any]], calls: int) -> float:
    """Median seconds per call over 5 rounds of `calls // 5`."""
    per_round = max(1, calls // 5)
    samples = []
    index = 0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            await call(index)
            index += 1
        samples.append((time.perf_counter() - start) / per_round)
    return statistics.median(samples)


def _time_sync(call: Callable[[int], Any], calls: int) -> float:
    per_round = max(1, calls // 5)
    samples = []
    index = 0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            call(index)
            index += 1
        samples.append((time.perf_counter() - start) / per_round)
    return statistics.median(samples)


def _asyncpg_engine() -> AsyncEngine:
    url = create_engine(URL).url.set(drivername="postgresql+asyncpg")
    return create_async_engine(url, connect_args={"server_settings": {"search_path": SCHEMA}})


async def main(calls: int) -> dict[str, float]:
    admin = create_engine(URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{SCHEMA}"')
    sync_engine = create_engine(URL, connect_args={"options": f"-csearch_path={SCHEMA}"})
    metadata.create_all(sync_engine)
    results: dict[str, float] = {}
    settings = Settings()
    try:
        clock = ManualClock(NOW)
        # --- sync psycopg
        sync_uow = SqlAlchemyUnitOfWork(sync_engine)
        sync = build_services(sync_uow, notifier=InMemoryNotifier(), clock=clock, settings=settings)
        raws = _seed(sync_uow, calls * 2 + 10)
        results["sync psycopg verify"] = _time_sync(
            lambda i: sync.guests.verify_token(raws[0]), calls
        )
        results["sync psycopg consume"] = _time_sync(
            lambda i: sync.guests.consume_token(raws[1 + i]), calls
        )

        # --- async asyncpg, and the statement verify sends
        engine = _asyncpg_engine()
        captured: list[tuple[str, Any]] = []

        def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *a: Any) -> None:
            captured.append((statement, parameters))

        uow = AsyncSqlAlchemyUnitOfWork(engine)
        services = build_async_services(uow, notifier=AsyncInMemoryNotifier(), clock=clock)
        raws = await greenlet_spawn(_seed, uow.sync, calls * 2 + 10)
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        await services.guests.verify_token(raws[0])
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        lookup_sql, lookup_params = next(c for c in captured if c[0].lstrip().startswith("SELECT"))
        results["async asyncpg verify"] = await _time_async(
            lambda i: services.guests.verify_token(raws[0]), calls
        )
        results["async asyncpg consume"] = await _time_async(
            lambda i: services.guests.consume_token(raws[1 + i]), calls
        )
        await engine.dispose()

        # --- the floor: one held asyncpg connection
        dsn = (
            create_engine(URL)
            .url.set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        held = await asyncpg.connect(dsn, server_settings={"search_path": SCHEMA})
        statement = await held.prepare(lookup_sql)
        args = tuple(lookup_params)

        async def floor_verify(_i: int) -> None:
            row = await statement.fetchrow(*args)
            assert row is not None

        token_ids = [
            r["id"]
            for r in await held.fetch(
                "SELECT id FROM magiclink_tokens WHERE used_at IS NULL ORDER BY id"
            )
        ]
        consume = await held.prepare(
            "UPDATE magiclink_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL"
        )

        async def floor_consume(i: int) -> None:
            async with held.transaction():
                await statement.fetchrow(*args)
                await consume.fetch(token_ids[i], NOW)

        results["floor asyncpg verify"] = await _time_async(floor_verify, calls)
        results["floor asyncpg consume"] = await _time_async(floor_consume, calls)
        await held.close()

        # --- async psycopg (same driver as the sync path)
        engine = create_async_engine(
            create_engine(URL).url.set(drivername="postgresql+psycopg_async"),
            connect_args={"options": f"-csearch_path={SCHEMA}"},
        )
        uow = AsyncSqlAlchemyUnitOfWork(engine)
        services = build_async_services(uow, notifier=AsyncInMemoryNotifier(), clock=clock)
        raws = await greenlet_spawn(_seed, uow.sync, calls * 2 + 10)
        results["async psycopg verify"] = await _time_async(
            lambda i: services.guests.verify_token(raws[0]), calls
        )
        results["async psycopg consume"] = await _time_async(
            lambda i: services.guests.consume_token(raws[1 + i]), calls
        )
        await engine.dispose()

        # --- the bridge alone, in memory
        memory = InMemoryUnitOfWork()
        raws = _seed(memory, 1)
        msync = build_services(memory, notifier=InMemoryNotifier(), clock=clock)
        masync = build_async_services(memory, notifier=AsyncInMemoryNotifier(), clock=clock)
        results["sync memory verify"] = _time_sync(
            lambda i: msync.guests.verify_token(raws[0]), calls * 5
        )
        results["async memory verify"] = await _time_async(
            lambda i: masync.guests.verify_token(raws[0]), calls * 5
        )
    finally:
        sync_engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        admin.dispose()
    return results


def report(results: dict[str, float]) -> None:
    for name, seconds in results.items():
        print(f"{name:26s} {seconds * 1e6:9.1f} µs/call")
    ratios = {
        "async asyncpg verify / floor": ("async asyncpg verify", "floor asyncpg verify"),
        "async asyncpg consume / floor": ("async asyncpg consume", "floor asyncpg consume"),
        "async psycopg verify / sync psycopg": ("async psycopg verify", "sync psycopg verify"),
        "async psycopg consume / sync psycopg": ("async psycopg consume", "sync psycopg consume"),
        "async memory verify / sync memory": ("async memory verify", "sync memory verify"),
    }
    print()
    for label, (ours, base) in ratios.items():
        print(f"{label:38s} {results[ours] / results[base]:5.2f}x")
    bridge = results["async memory verify"] - results["sync memory verify"]
    print(f"{'bridge cost per call (memory)':38s} {bridge * 1e6:5.1f} µs")
    goal = results["async asyncpg verify"] / results["floor asyncpg verify"]
    print(f"\ngoal async verify <= 1.3x the asyncpg floor: {'met' if goal <= 1.3 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    options = parser.parse_args()
    report(asyncio.run(main(200 if options.quick else 2000)))
    sys.exit(0)
