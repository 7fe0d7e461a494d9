"""magiclink benchmark: our operations against the raw-driver floor, in the same run.

    make bench                    # full run (a few minutes), writes bench/results/latest.json
    make bench-quick              # the same in under a minute, fewer calls per round
    .venv/bin/python bench/run.py --storage sqlite-file --ops verify,consume
    .venv/bin/python bench/run.py --profile verify --storage sqlite-file
    .venv/bin/python bench/run.py --reference xeon-2vcpu   # also bench/results/reference-*.md
    .venv/bin/python bench/run.py --reference xeon-2vcpu --from-json bench/results/latest.json

Method
------
Storages. The in-memory adapter; SQLite on a file (journal_mode=WAL, synchronous=NORMAL,
SQLAlchemy's default QueuePool); SQLite :memory: (StaticPool: one connection); PostgreSQL
when reachable (`postgresql+psycopg://postgres@127.0.0.1:5432/test`, overridden by
MAGICLINK_BENCH_POSTGRES_URL; an unreachable server is skipped with a printed note).

Two databases per storage. Ours and the floor each get their own database, created from the
same tables and seeded alike (bulk INSERTs in one transaction): 1,000 guests, 2,000
bookings, 10,000 background tokens (70 % live, 10 % each used, expired, invalidated),
1,000 live tokens kept for verification, 10,000 audit entries. Neither side's writes grow
the other's tables. PostgreSQL gets two schemas, ANALYZEd after seeding, dropped at exit.

Same settings. SQLite pragmas are set on every connection of both sides (an SQLAlchemy
`connect` listener for ours, executed on the raw connection for the floor), and the floor
also enables `foreign_keys`, which our unit of work enables on its connections. The floor
uses the driver's own transaction handling: sqlite3's implicit BEGIN before a write and
`commit()`; psycopg's implicit BEGIN and `commit()`. Both run at READ COMMITTED on PostgreSQL.

Ours is the public services, as a host calls them, with the system clock, no metrics and no
log handler enabled (the `magiclink` logger's INFO events cost only their level check):
* issue — `GuestService.request_inbox_link(email)` for an existing guest, no booking, with
  `Settings(request_interval=timedelta(0), max_links_per_hour=None)`: the rate limits never
  trip, but the interval's conditional UPDATE of the guest still runs (the hourly cap's
  COUNT is off: with it on, issue makes one SELECT more). So ours does the guest SELECT, that UPDATE, the token
  INSERT and the CREATE_TOKEN audit INSERT, against the floor's one INSERT;
* verify, consume — `verify_token(raw)`, `consume_token(raw)` of a live booking link;
* invalidate-N — `invalidate_tokens_by_booking_id(booking_id, "booking_cancelled")` on a
  booking holding N live tokens of its guest, N = 1, 10, 100, 1,000;
* cancel — `BookingService.cancel_session(...)` by the mentor, the booking holding one link.

The floor is the minimal raw-driver work for the same operation on a held connection in
autocommit mode — one round trip, no BEGIN/COMMIT around a single statement — on one reused
cursor, reading the clock per call where it needs the time: verify, the one
indexed SELECT our lookup issues (token JOIN guest LEFT JOIN booking by the unique hash, the
same 17 columns, fetched); consume, one conditional UPDATE by hash with the same liveness
and booking rules; issue, one INSERT (hash made beforehand); invalidate, one UPDATE by
booking; cancel, the booking's UPDATE and its tokens' UPDATE in one transaction. The
in-memory adapter is compared with the raw sqlite3 :memory: floor.

Data outside the timed region. Tokens to consume, bookings holding N tokens (each timed call
invalidates or cancels a different one) and issue items are written before each round;
verification cycles through the 1,000 pooled tokens (it changes nothing).

Timing. Per storage and operation: warm-up calls on both sides (each checked to have done its
work: the expected row, count, status), then 5 rounds per side, alternating which side goes
first. A round times a loop over its prepared items with `time.perf_counter_ns`, the garbage
collector collected before and paused during it (as `timeit` does). Calls per round come
from the warm-up's speed and a time budget per round, within per-operation limits. Reported:
the median of the 5 rounds' mean µs per call, ops/s from it, the rounds' min-max spread, and
ratio = ours median / floor median.

Statements. Counted on our engine with SQLAlchemy's `before_cursor_execute` over a few extra
untimed calls: "data" statements leave out transaction control (SQLite's BEGIN IMMEDIATE,
SAVEPOINT...); the COMMIT the driver sends itself is not seen on either side. While that
listener is attached, the adapter's token fast path (pre-compiled SQL on the DBAPI cursor,
pysqlite and psycopg) steps aside so the listener sees every statement: the counts are of
the same statements the timed calls sent, and the timings are taken without the listener.

Memory. tracemalloc, in-memory adapter: bytes per live token after adding 100,000 tokens
through the token port, and per link issued by `request_inbox_link` (token + audit entry).

`--quick` shortens rounds and warm-ups and measures memory at 10,000 tokens. `--profile OP`
runs one operation of ours under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import sqlite3
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, Final

from measure import Plan, measure_pair, memory_per_token, statements_per_call, time_calls, warm_up
from report import TIMES, markdown_page, statement_lines, text_table, verdict_lines, verdicts
from storages import STORAGES, open_storage, postgres_unreachable, postgres_url, workdir
from subjects import FLOOR_STATEMENTS, OPS, Floor, Ours

HERE: Final = Path(__file__).resolve().parent
RESULTS: Final = HERE / "results"

_CHEAP: Final = (20, 20_000)
FULL: Final = Plan(
    rounds=5,
    round_seconds=0.2,
    warmup=100,
    limits={"invalidate-100": (5, 60), "invalidate-1000": (3, 8)},
)
QUICK: Final = Plan(
    rounds=5,
    round_seconds=0.02,
    warmup=10,
    limits={"invalidate-100": (3, 10), "invalidate-1000": (2, 3)},
)
# Warm-up calls are capped for the big invalidations (each needs its own booking of N tokens).
WARMUP_CAP: Final = {"invalidate-100": 10, "invalidate-1000": 3}
MEMORY_TOKENS: Final = {"full": 100_000, "quick": 10_000}


def _plan_for(plan: Plan, op: str) -> Plan:
    warmup = min(plan.warmup, WARMUP_CAP.get(op, plan.warmup))
    return Plan(plan.rounds, plan.round_seconds, warmup, plan.limits)


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""

    def version(name: str) -> str:
        try:
            return package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            return "not installed"

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "machine": platform.node(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "sqlalchemy": version("sqlalchemy"),
        "sqlite": sqlite3.sqlite_version,
        "psycopg": version("psycopg"),
        "magiclink": version("magiclink"),
    }


def _storages(selected: str | None) -> list[str]:
    if not selected:
        return list(STORAGES)
    names = [s.strip() for s in selected.split(",") if s.strip()]
    unknown = [n for n in names if n not in STORAGES]
    if unknown:
        raise SystemExit(f"unknown storage(s) {unknown}; choose from {', '.join(STORAGES)}")
    return names


def _ops(selected: str | None) -> list[str]:
    if not selected:
        return list(OPS)
    names = [s.strip() for s in selected.split(",") if s.strip()]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise SystemExit(f"unknown operation(s) {unknown}; choose from {', '.join(OPS)}")
    return names


def _reachable(name: str) -> str | None:
    """Why a storage is skipped, or None."""
    if name == "postgres":
        return postgres_unreachable(postgres_url())
    return None


def bench_storage(name: str, ops: list[str], plan: Plan, scratch: Path) -> dict[str, Any]:
    """Measure every operation of one storage; its results."""
    with open_storage(name, scratch) as storage:
        ours = Ours(storage.uow, storage.ours_seeder, storage.ours_world)
        floor = Floor(
            storage.floor_connection,
            storage.floor_dialect,
            storage.floor_seeder,
            storage.floor_world,
        )
        results: dict[str, Any] = {}
        for op in ops:
            print(f"  {name}: {op}", end="", flush=True)
            timings = measure_pair(ours, floor, op, _plan_for(plan, op))
            counted = (
                None if storage.engine is None else statements_per_call(ours, storage.engine, op)
            )
            ratio = timings["ours"].median_us / timings["floor"].median_us
            results[op] = {
                "ours": timings["ours"].as_dict(),
                "floor": timings["floor"].as_dict(),
                "ratio": round(ratio, 3),
                "statements": counted,
                "floor_statements": FLOOR_STATEMENTS.get(op, 1),
            }
            print(
                f" — ours {timings['ours'].median_us:,.1f} µs, "
                f"floor {timings['floor'].median_us:,.1f} µs, {ratio:.2f}{TIMES}"
            )
        return {"note": storage.note, "ops": results}


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def write_reference(name: str, document: dict[str, Any]) -> Path:
    """bench/results/reference-NAME.md: the committed copy of a full run."""
    if document.get("mode") != "full":
        raise SystemExit("a reference is written from a full run only (not --quick)")
    page = RESULTS / f"reference-{name}.md"
    page.write_text(markdown_page({**document, "reference": name}))
    return page


def run(args: argparse.Namespace) -> int:
    """The full or quick benchmark; prints the tables and targets, writes the JSON."""
    if args.from_json:
        if not args.reference:
            raise SystemExit("--from-json needs --reference NAME")
        document = json.loads(Path(args.from_json).read_text())
        print(f"Wrote {write_reference(args.reference, document)}")
        return 0
    started = time.perf_counter()
    load_before = _load()
    plan = QUICK if args.quick else FULL
    mode = "quick" if args.quick else "full"
    ops = _ops(args.ops)
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    print(f"magiclink benchmark ({mode}): {plan.rounds} rounds of ~{plan.round_seconds} s")
    with workdir() as scratch:
        for name in _storages(args.storage):
            reason = _reachable(name)
            if reason is not None:
                print(f"NOTE: {name} skipped — {reason}")
                skipped[name] = reason
                continue
            results[name] = bench_storage(name, ops, plan, scratch)
    memory = None
    if not args.no_memory:
        tokens = MEMORY_TOKENS[mode]
        print(f"  memory: bytes per token at {tokens:,} tokens (tracemalloc)", flush=True)
        memory = memory_per_token(tokens)
    wall = time.perf_counter() - started
    document = {
        "command": " ".join(["bench/run.py", *sys.argv[1:]]),
        "mode": mode,
        "reference": args.reference,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "environment": {**environment(), "load_average": [load_before, _load()]},
        "plan": {"rounds": plan.rounds, "round_seconds": plan.round_seconds, "warmup": plan.warmup},
        "results": results,
        "skipped": skipped,
        "memory": memory,
        "targets": verdicts(results),
    }
    print()
    for name, storage in results.items():
        print(f"{name} — {storage['note']}")
        print(text_table(storage))
        print()
    print("Targets (ratio = ours / floor, same run):")
    print("\n".join(verdict_lines(results)))
    if memory is not None:
        print(
            f"\nMemory: {memory['port_bytes']:,.0f} bytes per live token "
            f"({memory['tokens']:,} tokens through the port); "
            f"{memory['issued_bytes']:,.0f} bytes per issued link (token + audit entry)"
        )
    print("\nStatements per operation (ours):")
    print("\n".join(statement_lines(results)))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nWrote {output}")
    if args.reference:
        print(f"Wrote {write_reference(args.reference, document)}")
    print(f"Wall time {wall:.1f} s")
    return 0


# --- Profile mode -----------------------------------------------------------------------------


def _where(filename: str) -> str:
    """The part of the code a profiled function belongs to."""
    if filename == "~":
        return "builtins and C (drivers included)"
    for part, label in (
        ("/magiclink/", "magiclink"),
        ("/sqlalchemy/", "sqlalchemy"),
        ("/psycopg/", "psycopg"),
        ("/attr/", "attrs"),
        ("/bench/", "bench harness"),
    ):
        if part in filename:
            return label
    return "stdlib"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile(args: argparse.Namespace) -> int:
    """Run one operation of ours under cProfile; print the time by package and top functions."""
    op = _ops(args.profile)[0]
    names = _storages(args.storage or "sqlite-file")
    if len(names) != 1:
        raise SystemExit("--profile takes one --storage")
    name = names[0]
    reason = _reachable(name)
    if reason is not None:
        raise SystemExit(f"{name} unavailable: {reason}")
    calls = args.calls or (
        20 if op == "invalidate-1000" else 200 if op == "invalidate-100" else 2_000
    )
    with workdir() as scratch, open_storage(name, scratch) as storage:
        ours = Ours(storage.uow, storage.ours_seeder, storage.ours_world)
        floor = Floor(
            storage.floor_connection,
            storage.floor_dialect,
            storage.floor_seeder,
            storage.floor_world,
        )
        warm_up(ours, op, min(100, calls))
        warm_up(floor, op, min(100, calls))
        plain = time_calls(ours.runner(op), ours.prepare(op, calls)) / 1000
        bottom = time_calls(floor.runner(op), floor.prepare(op, calls)) / 1000
        items = ours.prepare(op, calls)
        run = ours.runner(op)
        profiler = cProfile.Profile()
        profiler.enable()
        for item in items:
            run(item)
        profiler.disable()
    print(
        f"{name} {op}: ours {plain:,.1f} µs per call unprofiled, floor {bottom:,.1f} µs "
        f"({plain / bottom:.2f}{TIMES}); profiling {calls} calls"
    )
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    by_part: dict[str, float] = defaultdict(float)
    for (filename, _line, _func), entry in raw.items():
        by_part[_where(filename)] += entry[2]
    print("\nOwn time by package (cProfile inflates Python-level code):")
    for part, seconds in sorted(by_part.items(), key=lambda kv: -kv[1]):
        print(f"  {part:<36} {seconds / calls * 1e6:8.1f} µs/call  {100 * seconds / total:5.1f} %")
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        print(f"\nTop {args.top} functions by {title} (µs per operation):")
        ranked = sorted(raw.items(), key=lambda kv: -kv[1][2 if key == "tottime" else 3])
        print(f"  {'own':>8} {'cum':>8} {'calls/op':>8}  function")
        for (filename, line, func), (_cc, nc, tt, ct, _callers) in ranked[: args.top]:
            where = f"{_short(filename)}:{line}" if filename != "~" else ""
            print(
                f"  {tt / calls * 1e6:8.2f} {ct / calls * 1e6:8.2f} {nc / calls:8.1f}  "
                f"{func} {where}".rstrip()
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short run (under a minute)")
    parser.add_argument(
        "--storage", help=f"comma-separated subset of: {', '.join(STORAGES)} (default: all)"
    )
    parser.add_argument("--ops", help=f"comma-separated subset of: {', '.join(OPS)}")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"), help="JSON results file")
    parser.add_argument(
        "--reference",
        metavar="NAME",
        help="also write bench/results/reference-NAME.md (the committed copy of a full run)",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="with --reference: write the page from a saved full run instead of measuring",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--profile", metavar="OP", help="profile one operation of ours")
    parser.add_argument("--calls", type=int, help="calls to profile (with --profile)")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args(argv)
    if args.profile:
        return profile(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
