"""Soak run (`make soak`): 8 processes x 2,000 mixed operations against PostgreSQL.

Not part of `make test` (pytest collects only `test_*.py`). Each process books sessions,
issues links, verifies and consumes them, and drives every lifecycle event (cancel by mentor
or student, reschedule, no-show, rating, incident) on bookings of its own, plus a share of
operations on bookings common to all processes (real row-lock contention). It knows which
of its links are dead: after a committed cancellation, reschedule, no-show, rating,
incident or consumption, and asserts every one is refused when presented; it also asserts
that the links it knows are live are accepted. Only expected domain refusals may be raised.

At the end the parent cross-checks the database with fresh connections: every dead link
refused by `verify_token`, every live one accepted, every invalidated token with `used_at`,
and the `INVALIDATE_TOKEN` counts of every (booking, guest, reason) equal to the tokens
invalidated for it. It prints throughput and latency percentiles per operation and exits
non-zero on any violation (1), a missing server (2) or a run cut by the global timeout (3).

    .venv/bin/python tests/soak/run.py [--processes 8] [--operations 2000] [--timeout 300]

The database is `MAGICLINK_TEST_POSTGRES_URL` (default: the local `test` database); the run
works in a schema of its own, `magiclink_soak`, dropped and created at the start and left
behind for inspection.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import queue
import random
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, make_url, select

from magiclink import (
    AccessDenied,
    AuditAction,
    BookingClosed,
    BookingService,
    DuplicateRating,
    GuestService,
    IncidentType,
    MagicLinkError,
    QualityRepository,
    RatingService,
    Requester,
    Settings,
    TokenExpiredOrUsed,
)
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork, metadata
from magiclink.ports import Notifier

DEFAULT_URL = os.environ.get(
    "MAGICLINK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SCHEMA = "magiclink_soak"
SHARED_BOOKINGS = 40
SETTINGS = Settings(request_interval=timedelta(0), max_links_per_hour=None)  # no rate limits here
WEIGHTS = {
    "book": 10,
    "issue": 14,
    "verify": 24,
    "consume": 10,
    "cancel": 7,
    "reschedule": 10,
    "no_show": 4,
    "rate": 6,
    "incident": 5,
    "shared": 10,
}
MAX_REPORTED = 20


class LastMessage(Notifier):
    """Keeps the last mailed link; the soak needs nothing else."""

    def __init__(self) -> None:
        self.url = ""

    def send(self, message: Any) -> None:
        self.url = message.url


def raw_of(url: str) -> str:
    return url.rsplit("token=", 1)[1]


@dataclass
class Own:
    """A booking of this process: only this process changes it, so outcomes are known."""

    id: int
    uid: str
    email: str
    mentor_id: int
    closed: bool = False
    rated: bool = False


@dataclass
class Report:
    """What a worker sends back to the parent."""

    index: int
    done: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    refusals: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    dead: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    stale_accepted: int = 0
    timed_out: bool = False

    def violation(self, text: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_REPORTED:
            self.violations.append(f"process {self.index}: {text}")


class Worker:
    """One process's services, bookings and knowledge of its links."""

    def __init__(self, index: int, url: str, seed: int, shared: list[tuple[int, str]]) -> None:
        self.index = index
        self.rng = random.Random(seed)
        self.engine = create_engine(url, pool_size=2, max_overflow=2)
        uow = SqlAlchemyUnitOfWork(self.engine)
        self.notifier = LastMessage()
        self.guests = GuestService(uow, settings=SETTINGS)
        self.bookings = BookingService(uow, self.guests, notifier=self.notifier)
        self.ratings = RatingService(uow, self.guests)
        self.quality = QualityRepository(uow, self.guests)
        self.shared = shared
        self.own: dict[int, Own] = {}
        self.live: dict[str, int] = {}  # raw -> booking id: accepted when presented
        self.dead: set[str] = set()  # refused when presented, whatever happens next
        self.shared_links: dict[str, int] = {}  # live or not: other processes decide
        self.report = Report(index)
        self.serial = 0

    # --- bookkeeping -----------------------------------------------------------------------

    def kill_links(self, booking_id: int) -> None:
        """A committed event of this booking: every link of it known here is dead."""
        for raw in [r for r, b in self.live.items() if b == booking_id]:
            del self.live[raw]
            self.dead.add(raw)
        for raw in [r for r, b in self.shared_links.items() if b == booking_id]:
            del self.shared_links[raw]
            self.dead.add(raw)

    def open_booking(self) -> Own | None:
        candidates = [b for b in self.own.values() if not b.closed]
        return self.rng.choice(candidates) if candidates else None

    def requester(self, booking: Own) -> Requester:
        return self.rng.choice(
            [Requester(user_id=booking.mentor_id), Requester(email=booking.email)]
        )

    # --- operations ------------------------------------------------------------------------

    def book(self) -> None:
        self.serial += 1
        email = f"p{self.index}-b{self.serial}@soak.test"
        mentor_id = 1_000_000 * (self.index + 1) + self.serial
        start = datetime.now(UTC) + timedelta(days=1)
        outcome = self.bookings.book_session(mentor_id, email, start)
        booking = outcome.booking
        self.own[booking.id] = Own(booking.id, booking.uid, email, mentor_id)
        if not outcome.link_sent:
            self.report.violation(f"booking {booking.id}: first link not sent")
            return
        self.live[raw_of(self.notifier.url)] = booking.id

    def issue(self) -> None:
        booking = self.open_booking()
        if booking is None:
            return self.book()
        issued = self.guests.request_inbox_link(booking.email, booking.id)
        self.live[issued.raw] = booking.id
        return None

    def present(self, consume: bool) -> None:
        use = self.guests.consume_token if consume else self.guests.verify_token
        pool = self.dead if self.rng.random() < 0.3 else self.live
        if not pool:
            pool = self.live or self.dead
        if not pool:
            return self.book()
        raw = self.rng.choice(sorted(pool)) if pool is self.dead else self.rng.choice([*pool])
        if raw in self.dead:
            try:
                use(raw)
            except TokenExpiredOrUsed:
                self.report.refusals["dead link refused"] += 1
            else:
                self.report.stale_accepted += 1
                self.report.violation(f"stale link accepted by {use.__name__}")
            return None
        try:
            use(raw)
        except MagicLinkError as error:
            self.report.violation(f"live link refused by {use.__name__}: {error!r}")
            del self.live[raw]
            self.dead.add(raw)
            return None
        if consume:
            del self.live[raw]
            self.dead.add(raw)
        return None

    def cancel(self, no_show: bool = False) -> None:
        booking = self.open_booking()
        if booking is None:
            return self.book()
        if no_show:
            self.bookings.mark_session_as_no_show(booking.id, Requester(user_id=booking.mentor_id))
        else:
            who = self.rng.choice(["mentor", "student"])
            requester = (
                Requester(user_id=booking.mentor_id)
                if who == "mentor"
                else Requester(email=booking.email)
            )
            self.bookings.cancel_session(booking.id, "soak", who, requester)
        booking.closed = True
        self.kill_links(booking.id)
        return None

    def reschedule(self) -> None:
        booking = self.open_booking()
        if booking is None:
            return self.book()
        start = datetime.now(UTC) + timedelta(days=2, minutes=self.rng.randrange(600))
        outcome = self.bookings.reschedule_session(booking.id, start, self.requester(booking))
        self.kill_links(booking.id)
        if not (outcome.link_issued and outcome.link_sent):
            self.report.violation(f"booking {booking.id}: reschedule link not issued/sent")
            return None
        self.live[raw_of(self.notifier.url)] = booking.id
        return None

    def rate(self) -> None:
        booking = self.open_booking()
        if booking is None:
            return self.book()
        try:
            self.ratings.create_rating(booking.id, f"profile-{booking.mentor_id}", 5, "soak")
        except DuplicateRating:
            if not booking.rated:
                raise
            self.report.refusals["DuplicateRating"] += 1
            return None
        if booking.rated:
            self.report.violation(f"booking {booking.id} rated twice")
        booking.rated = True
        self.kill_links(booking.id)
        return None

    def incident(self) -> None:
        booking = self.open_booking()
        if booking is None:
            return self.book()
        self.quality.create_incident(
            f"profile-{booking.mentor_id}", booking.uid, IncidentType.TECHNICAL_ISSUE, "soak"
        )
        self.kill_links(booking.id)
        return None

    def on_shared(self) -> None:
        """Contended work on the bookings every process shares; closures are refusals."""
        booking_id, email = self.rng.choice(self.shared)
        action = self.rng.random()
        try:
            if action < 0.45:
                self.shared_links[self.guests.request_inbox_link(email, booking_id).raw] = (
                    booking_id
                )
            elif action < 0.75 and self.shared_links:
                raw = self.rng.choice([*self.shared_links])
                try:
                    self.guests.verify_token(raw)
                except TokenExpiredOrUsed:
                    self.report.refusals["shared link refused (other process)"] += 1
            elif action < 0.97:
                self.bookings.reschedule_session(
                    booking_id, datetime.now(UTC) + timedelta(days=3), Requester.system()
                )
                self.kill_links(booking_id)
                self.shared_links[raw_of(self.notifier.url)] = booking_id
            else:
                self.bookings.cancel_session(booking_id, "soak", "mentor", Requester.system())
                self.kill_links(booking_id)
        except BookingClosed:
            self.report.refusals["BookingClosed (shared)"] += 1

    # --- the loop --------------------------------------------------------------------------

    def run(self, operations: int, deadline: float) -> Report:
        actions: dict[str, Callable[[], None]] = {
            "book": self.book,
            "issue": self.issue,
            "verify": lambda: self.present(consume=False),
            "consume": lambda: self.present(consume=True),
            "cancel": self.cancel,
            "reschedule": self.reschedule,
            "no_show": lambda: self.cancel(no_show=True),
            "rate": self.rate,
            "incident": self.incident,
            "shared": self.on_shared,
        }
        names = list(WEIGHTS)
        weights = [WEIGHTS[n] for n in names]
        for _ in range(operations):
            if time.time() > deadline:
                self.report.timed_out = True
                break
            name = self.rng.choices(names, weights)[0]
            started = time.perf_counter()
            try:
                actions[name]()
            except Exception as error:
                detail = "".join(traceback.format_exception_only(error)).strip()
                self.report.violation(f"unexpected {type(error).__name__} in {name}: {detail}")
            self.report.latencies[name].append((time.perf_counter() - started) * 1000)
            self.report.done += 1
        self.report.dead = sorted(self.dead)
        self.report.live = sorted(self.live)
        self.engine.dispose()
        return self.report


def work(
    index: int,
    url: str,
    operations: int,
    seed: int,
    deadline: float,
    shared: list[tuple[int, str]],
    results: Any,
) -> None:
    """Process entry point: run the worker and send its report."""
    try:
        report = Worker(index, url, seed, shared).run(operations, deadline)
    except BaseException as error:  # report, never hang the parent
        report = Report(index)
        report.violation(f"worker crashed: {error!r}")
    report.latencies = dict(report.latencies)
    results.put(report)


# --- the parent ----------------------------------------------------------------------------


def prepare(url: str) -> str:
    """Drop and create the soak schema and its tables; the URL that works inside it."""
    admin = create_engine(url, connect_args={"connect_timeout": 3})
    with admin.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        connection.exec_driver_sql(f'CREATE SCHEMA "{SCHEMA}"')
    admin.dispose()
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={SCHEMA}"})
    engine = create_engine(scoped)
    metadata.create_all(engine)
    engine.dispose()
    return scoped.render_as_string(hide_password=False)


def shared_bookings(url: str) -> list[tuple[int, str]]:
    engine = create_engine(url)
    guests = GuestService(SqlAlchemyUnitOfWork(engine), settings=SETTINGS)
    bookings = BookingService(SqlAlchemyUnitOfWork(engine), guests, notifier=LastMessage())
    start = datetime.now(UTC) + timedelta(days=1)
    made = []
    for i in range(SHARED_BOOKINGS):
        email = f"shared-{i}@soak.test"
        made.append((bookings.book_session(7, email, start).booking.id, email))
    engine.dispose()
    return made


def database_violations(url: str, dead: list[str], live: list[str]) -> list[str]:
    """Cross-check with fresh connections: links, `used_at`, audit counts."""
    problems: list[str] = []
    engine = create_engine(url)
    guests = GuestService(SqlAlchemyUnitOfWork(engine))
    accepted = [raw for raw in dead if accepts(guests, raw)]
    if accepted:
        problems.append(f"{len(accepted)} dead links accepted at the end")
    refused = [raw for raw in live if not accepts(guests, raw)]
    if refused:
        problems.append(f"{len(refused)} live links refused at the end")
    tokens = metadata.tables["magiclink_tokens"]
    audit = metadata.tables["magiclink_audit_log"]
    invalidated: Counter[tuple[str, int, str]] = Counter()
    with engine.connect() as connection:
        for row in connection.execute(
            select(
                tokens.c.booking_id,
                tokens.c.guest_id,
                tokens.c.invalidation_reason,
                tokens.c.used_at,
            ).where(tokens.c.invalidated.is_(True))
        ):
            if row.used_at is None:
                problems.append("an invalidated token has no used_at")
            invalidated[(str(row.booking_id), row.guest_id, row.invalidation_reason)] += 1
        audited: Counter[tuple[str, int, str]] = Counter()
        for entry in connection.execute(
            select(audit.c.resource_id, audit.c.guest_id, audit.c.metadata).where(
                audit.c.action == str(AuditAction.INVALIDATE_TOKEN)
            )
        ):
            audited[(entry.resource_id, entry.guest_id, entry.metadata["reason"])] += int(
                entry.metadata["count"]
            )
    mismatched = [k for k in set(invalidated) | set(audited) if invalidated[k] != audited[k]]
    if mismatched:
        problems.append(f"{len(mismatched)} (booking, guest, reason) audit counts mismatched")
    print(
        f"database: {sum(invalidated.values())} tokens invalidated, audited"
        f" {sum(audited.values())} in {len(audited)} (booking, guest, reason) groups;"
        f" {len(dead)} dead links refused, {len(live)} live links accepted"
    )
    engine.dispose()
    return problems


def accepts(guests: GuestService, raw: str) -> bool:
    try:
        guests.verify_token(raw)
    except (TokenExpiredOrUsed, AccessDenied):
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def print_figures(reports: list[Report], seconds: float) -> None:
    merged: dict[str, list[float]] = defaultdict(list)
    for report in reports:
        for name, values in report.latencies.items():
            merged[name] += values
    total = sum(len(v) for v in merged.values())
    print(f"{total} operations in {seconds:.1f} s: {total / seconds:.0f} ops/s overall")
    print(f"{'operation':<12}{'count':>7}{'ops/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in WEIGHTS:
        values = merged.get(name, [])
        if values:
            print(
                f"{name:<12}{len(values):>7}{len(values) / seconds:>8.1f}"
                f"{percentile(values, 50):>9.2f}{percentile(values, 99):>9.2f}"
                f"{max(values):>9.2f}"
            )
    refusals: Counter[str] = Counter()
    for report in reports:
        refusals.update(report.refusals)
    print("expected refusals: " + ", ".join(f"{k}={v}" for k, v in sorted(refusals.items())))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--operations", type=int, default=2_000)
    parser.add_argument("--timeout", type=float, default=300.0, help="global, in seconds")
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()

    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    print(
        f"soak {started_at}: {args.processes} processes x {args.operations} operations,"
        f" seed {args.seed}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    try:
        url = prepare(args.url)
        shared = shared_bookings(url)
    except Exception as error:
        print(f"PostgreSQL unavailable at {make_url(args.url)!r}: {error}", file=sys.stderr)
        return 2
    deadline = time.time() + args.timeout
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(
            target=work,
            args=(i, url, args.operations, args.seed * 100 + i, deadline, shared, results),
        )
        for i in range(args.processes)
    ]
    began = time.perf_counter()
    for process in processes:
        process.start()
    reports: list[Report] = []
    timed_out = False
    try:
        while len(reports) < len(processes):
            reports.append(results.get(timeout=max(1.0, deadline - time.time() + 30)))
    except queue.Empty:
        timed_out = True
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            timed_out = True
    timed_out = timed_out or any(r.timed_out for r in reports)

    print_figures(reports, elapsed)
    violations = [v for r in reports for v in r.violations]
    violation_count = sum(r.violation_count for r in reports)
    stale = sum(r.stale_accepted for r in reports)
    dead = [raw for r in reports for raw in r.dead]
    live = [raw for r in reports for raw in r.live]
    problems = database_violations(url, dead, live)
    violation_count += len(problems)
    print(f"stale links accepted: {stale}; violations: {violation_count}")
    for line in [*violations, *problems][:MAX_REPORTED]:
        print(f"  VIOLATION {line}")
    if violation_count:
        return 1
    if timed_out or sum(r.done for r in reports) < args.processes * args.operations:
        print(f"INCOMPLETE: stopped by the {args.timeout:.0f} s timeout")
        return 3
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
