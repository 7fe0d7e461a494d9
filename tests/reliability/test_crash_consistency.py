"""Crash consistency (§5.2): a process killed mid-invalidation leaves no half-done work.

A child process (`crash_worker.py`) books sessions, issues links and invalidates them (by
cancellation, rescheduling, or `invalidate_tokens_by_booking_id` directly) in a loop, on a
SQLite file and on PostgreSQL. It is killed with SIGKILL at a random moment, twenty times
per database; the next child carries on with the same database. After each kill a fresh
connection checks that every invalidated token has `used_at`, that the `INVALIDATE_TOKEN`
counts of every (booking, guest, reason) equal the tokens invalidated for it (so no
invalidation lacks its entry and no entry exists for an invalidation that did not commit),
and, on SQLite, that the file passes `PRAGMA integrity_check`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy import Engine, create_engine, select

from magiclink import AuditAction
from magiclink.adapters.sqlalchemy import metadata
from tests.databases import isolated_postgres_engine

WORKER: Final = Path(__file__).with_name("crash_worker.py")
KILLS: Final = 20
READY_TIMEOUT_SECONDS: Final = 30
TOKENS: Final = metadata.tables["magiclink_tokens"]
AUDIT: Final = metadata.tables["magiclink_audit_log"]
BOOKINGS: Final = metadata.tables["magiclink_bookings"]


class Worker:
    """One child process, started ahead of time: imported and waiting for `go()`."""

    def __init__(self, url: str, seed: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), url, str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._expect("loaded")

    def _expect(self, line: str) -> None:
        assert self.process.stdout is not None
        got = self.process.stdout.readline().strip()
        if got != line:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=READY_TIMEOUT_SECONDS)
            pytest.fail(f"crash worker said {got!r} instead of {line!r}:\n{stderr}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self._expect("ready")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=READY_TIMEOUT_SECONDS)
        died_alone = self.process.returncode != -signal.SIGKILL
        stderr = self.process.stderr.read() if died_alone and self.process.stderr else ""
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        # Killed by us, not dead of an error of its own before the kill.
        assert not died_alone, f"the worker died before the kill:\n{stderr}"


def consistency_violations(url: str) -> tuple[list[str], int]:
    """What a fresh connection finds wrong; and how many tokens are invalidated in all."""
    engine = create_engine(url)
    problems: list[str] = []
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                check = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
                if check != "ok":
                    problems.append(f"SQLite integrity_check: {check}")
            invalidated: Counter[tuple[str, int, str]] = Counter()
            for row in connection.execute(
                select(
                    TOKENS.c.id,
                    TOKENS.c.booking_id,
                    TOKENS.c.guest_id,
                    TOKENS.c.invalidation_reason,
                    TOKENS.c.used_at,
                ).where(TOKENS.c.invalidated.is_(True))
            ):
                if row.used_at is None:
                    problems.append(f"token {row.id} invalidated without used_at")
                invalidated[(str(row.booking_id), row.guest_id, row.invalidation_reason)] += 1
            audited: Counter[tuple[str, int, str]] = Counter()
            for entry in connection.execute(
                select(AUDIT.c.id, AUDIT.c.resource_id, AUDIT.c.guest_id, AUDIT.c.metadata).where(
                    AUDIT.c.action == str(AuditAction.INVALIDATE_TOKEN)
                )
            ):
                count = entry.metadata.get("count")
                if not isinstance(count, int) or count < 1:
                    problems.append(f"audit entry {entry.id} has count {count!r}")
                    continue
                audited[(entry.resource_id, entry.guest_id, entry.metadata["reason"])] += count
            for key in sorted(set(invalidated) | set(audited), key=repr):
                if invalidated[key] != audited[key]:
                    problems.append(
                        f"(booking, guest, reason) {key}: {invalidated[key]} tokens invalidated,"
                        f" audited {audited[key]}"
                    )
            bookings = connection.execute(select(BOOKINGS.c.id)).all()
            if not bookings:
                problems.append("the worker stored nothing")
    finally:
        engine.dispose()
    return problems, sum(invalidated.values())


def kill_repeatedly(url: str, rng: random.Random) -> None:
    """Start, kill and check a worker `KILLS` times on the same database."""
    upcoming: Worker | None = Worker(url, rng.randrange(1 << 30))
    totals: list[int] = []
    try:
        for kill in range(1, KILLS + 1):
            assert upcoming is not None
            current, upcoming = upcoming, None
            try:
                current.go()
                if kill < KILLS:
                    upcoming = Worker(url, rng.randrange(1 << 30))
                time.sleep(rng.uniform(0.02, 0.3))
            finally:
                current.kill()
            problems, total = consistency_violations(url)
            assert problems == [], f"after kill {kill}: {problems}"
            totals.append(total)
    finally:
        if upcoming is not None:
            upcoming.kill()
    # Each child committed at least one invalidation before its "ready": work went on.
    assert totals[-1] >= KILLS
    assert totals == sorted(totals)


@contextmanager
def sqlite_url(directory: Path) -> Iterator[str]:
    url = f"sqlite:///{directory / 'crash.db'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    yield url


def test_sqlite_killed_mid_invalidation_leaves_no_half_done_work(tmp_path: Path) -> None:
    """§5.2 on a SQLite file: twenty SIGKILLs, invalidation and audit land together."""
    with sqlite_url(tmp_path) as url:
        kill_repeatedly(url, random.Random(20240501))


@pytest.mark.postgres
def test_postgres_killed_mid_invalidation_leaves_no_half_done_work() -> None:
    """§5.2 on PostgreSQL: twenty SIGKILLs, invalidation and audit land together."""
    with isolated_postgres_engine() as engine:
        metadata.create_all(engine)
        url = engine_url(engine)
        kill_repeatedly(url, random.Random(20240502))


def engine_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)
