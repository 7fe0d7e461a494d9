"""Timing, statement counting and memory measurement."""

from __future__ import annotations

import gc
import re
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Engine, event
from storages import GUESTS, GuestRef, PortSeeder, booking_row, hash_of
from subjects import Runner, Subject

from magiclink import GuestService, MagicLinkToken, Settings, build_services
from magiclink.adapters.memory import InMemoryNotifier, InMemoryUnitOfWork


@dataclass(frozen=True)
class Plan:
    """How hard to measure: rounds, the time budget of one round, warm-up calls."""

    rounds: int
    round_seconds: float
    warmup: int
    # Calls per round are budget / (time of one warm-up call), clamped per operation.
    limits: dict[str, tuple[int, int]] = field(default_factory=dict)

    def calls(self, op: str, seconds_per_call: float) -> int:
        low, high = self.limits.get(op, (20, 20_000))
        wanted = int(self.round_seconds / max(seconds_per_call, 1e-9))
        return max(low, min(high, wanted))


@dataclass
class Timing:
    """One subject's rounds of one operation: the mean time of a call in each round."""

    rounds_ns: list[float]
    calls: int

    @property
    def median_us(self) -> float:
        return statistics.median(self.rounds_ns) / 1000

    @property
    def min_us(self) -> float:
        return min(self.rounds_ns) / 1000

    @property
    def max_us(self) -> float:
        return max(self.rounds_ns) / 1000

    @property
    def ops_per_s(self) -> float:
        return 1e6 / self.median_us

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_us": round(self.median_us, 2),
            "ops_per_s": round(self.ops_per_s, 1),
            "min_us": round(self.min_us, 2),
            "max_us": round(self.max_us, 2),
            "rounds_us": [round(ns / 1000, 2) for ns in self.rounds_ns],
            "calls_per_round": self.calls,
        }


def time_calls(run: Runner, items: Sequence[Any]) -> float:
    """Mean nanoseconds of one call of `run` over `items`, garbage collector paused (as
    `timeit` does; collected before the round)."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter_ns()
        for item in items:
            run(item)
        elapsed = time.perf_counter_ns() - started
    finally:
        gc.enable()
    return elapsed / len(items)


def warm_up(subject: Subject, op: str, calls: int) -> float:
    """Run `calls` untimed calls (checking each did its work); seconds per call."""
    run = subject.runner(op)
    items = subject.prepare(op, calls)
    started = time.perf_counter()
    results = [run(item) for item in items]
    seconds = (time.perf_counter() - started) / len(items)
    for item, result in zip(items, results, strict=True):
        if not subject.check(op, item, result):
            raise AssertionError(f"{subject.label} {op}: a call did not do its work: {result!r}")
    return seconds


def measure_pair(ours: Subject, floor: Subject, op: str, plan: Plan) -> dict[str, Timing]:
    """Warm both up, then `plan.rounds` rounds of each, alternating which goes first.

    The timings are keyed by each subject's `label` (any two distinct labels)."""
    per_call = {s.label: warm_up(s, op, plan.warmup) for s in (ours, floor)}
    calls = {label: plan.calls(op, seconds) for label, seconds in per_call.items()}
    rounds: dict[str, list[float]] = {ours.label: [], floor.label: []}
    for index in range(plan.rounds):
        order = (ours, floor) if index % 2 == 0 else (floor, ours)
        for subject in order:
            items = subject.prepare(op, calls[subject.label])
            rounds[subject.label].append(time_calls(subject.runner(op), items))
    return {label: Timing(rounds[label], calls[label]) for label in rounds}


# --- Statements ----------------------------------------------------------------------------

_CONTROL: Final = re.compile(
    r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET\s+TRANSACTION|PRAGMA)\b", re.IGNORECASE
)


@dataclass
class StatementLog:
    """Statements an engine sent through a cursor (`before_cursor_execute`)."""

    statements: list[str] = field(default_factory=list)

    @property
    def work(self) -> int:
        """Statements reading or writing data (BEGIN, SAVEPOINT, PRAGMA... left out)."""
        return sum(1 for s in self.statements if not _CONTROL.match(s))


@contextmanager
def counting(engine: Engine) -> Iterator[StatementLog]:
    """Record what `engine` executes inside the block (an executemany counts once).

    Transaction control the DBAPI issues itself (pysqlite's COMMIT, psycopg's BEGIN and
    COMMIT) never reaches a cursor: it is not seen, on either side.
    """
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        log.statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", record)


def statements_per_call(
    subject: Subject, engine: Engine, op: str, calls: int = 2
) -> dict[str, Any]:
    """Statements of one call of `op`: data statements and all, averaged over `calls`
    untimed calls, and the sequence the last call sent (in short form)."""
    items = subject.prepare(op, calls)
    run = subject.runner(op)
    with counting(engine) as log:
        last = 0
        for item in items:
            last = len(log.statements)
            run(item)
    return {
        "work": log.work / calls,
        "total": len(log.statements) / calls,
        "sequence": [shape(s) for s in log.statements[last:]],
    }


_TABLE: Final = re.compile(r"\b(?:FROM|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)


def shape(statement: str) -> str:
    """A statement in short: its verb and table; joins, FOR UPDATE and RETURNING noted."""
    text = " ".join(statement.split())
    if _CONTROL.match(text):
        return text
    verb = text.split(" ", 1)[0].upper()
    table = _TABLE.search(text)
    parts = [verb, table.group(1).removeprefix("magiclink_") if table else "?"]
    if " JOIN " in text.upper():
        parts.append(f"+{text.upper().count(' JOIN ')} join")
    for clause in (" FOR UPDATE", " RETURNING "):
        if clause in text.upper():
            parts.append(clause.strip())
    return " ".join(parts)


# --- Memory --------------------------------------------------------------------------------


def memory_per_token(tokens: int) -> dict[str, Any]:
    """Bytes per live token held by the in-memory adapter, measured with tracemalloc.

    * `port`: `tokens` tokens added through the token port (the stored token, its id, hash
      and times, and its entries in the by-id, by-hash, by-booking and by-guest indexes),
      over 1,000 guests and one booking per 10 tokens;
    * `issued`: as many links issued by `GuestService.request_inbox_link` (the token plus its
      CREATE_TOKEN audit entry and the guest's updated `last_request_at`).

    Each figure is (traced memory after - before) / tokens, after a full collection.
    """
    return {
        "tokens": tokens,
        "port_bytes": _port_tokens(tokens),
        "issued_bytes": _issued_links(tokens),
    }


def _traced(build: Callable[[], Any], work: Callable[[Any], None], count: int) -> float:
    world = build()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work(world)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


def _port_tokens(count: int) -> float:
    base = datetime(2030, 1, 1, tzinfo=UTC)

    def build() -> tuple[InMemoryUnitOfWork, list[int], list[int]]:
        uow = InMemoryUnitOfWork()
        seeder = PortSeeder(uow)
        emails = [f"guest{i:05d}@bench.example" for i in range(GUESTS)]
        guest_ids = seeder.guests(
            [
                {
                    "normalized_email": e,
                    "blocked": False,
                    "last_request_at": None,
                    "created_at": base,
                }
                for e in emails
            ]
        )
        people = [GuestRef(i, e) for i, e in zip(guest_ids, emails, strict=True)]
        booking_ids = seeder.bookings(
            [booking_row(f"m-{i}", people[i % GUESTS], 1, base) for i in range(max(1, count // 10))]
        )
        return uow, guest_ids, booking_ids

    def work(world: tuple[InMemoryUnitOfWork, list[int], list[int]]) -> None:
        uow, guest_ids, booking_ids = world
        for start in range(0, count, 1_000):
            with uow.transaction() as tx:
                for i in range(start, min(count, start + 1_000)):
                    created = base + timedelta(microseconds=i)
                    booking = booking_ids[i // 10 % len(booking_ids)]
                    tx.tokens.add(
                        MagicLinkToken.new(
                            token_hash=hash_of(str(i)),
                            guest_id=guest_ids[i % GUESTS],
                            booking_id=booking,
                            booking_revision=0,
                            expires_at=created + timedelta(minutes=15),
                            created_at=created,
                        )
                    )
                tx.commit()

    return _traced(build, work, count)


def _issued_links(count: int) -> float:
    def build() -> tuple[GuestService, list[str]]:
        uow = InMemoryUnitOfWork()
        settings = Settings(request_interval=timedelta(0), max_links_per_hour=None)
        service = build_services(uow, notifier=InMemoryNotifier(), settings=settings).guests
        emails = [f"guest{i:05d}@bench.example" for i in range(GUESTS)]
        for email in emails:  # the guests exist before measuring
            service.request_inbox_link(email)
        return service, emails

    def work(world: tuple[GuestService, list[str]]) -> None:
        service, emails = world
        for i in range(count):
            service.request_inbox_link(emails[i % GUESTS])

    # The warm-up issued one link per guest before measuring: count only the new ones.
    return _traced(build, work, count)
