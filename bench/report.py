"""Targets, and the results as a text table, a Markdown page and JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

TIMES: Final = "\N{MULTIPLICATION SIGN}"
DASH: Final = "\N{EN DASH}"


@dataclass(frozen=True)
class Target:
    """Our median over the floor's median, same run, must not exceed `ratio`."""

    storage: str
    op: str
    ratio: float
    what: str

    @property
    def label(self) -> str:
        return f"{self.what} ≤ {self.ratio:.1f}{TIMES} floor"

    def judge(self, results: dict[str, Any]) -> dict[str, Any]:
        row = results.get(self.storage, {}).get("ops", {}).get(self.op)
        figure = None if row is None else row["ratio"]
        met = None if figure is None else figure <= self.ratio
        return {
            "storage": self.storage,
            "op": self.op,
            "label": self.label,
            "limit": self.ratio,
            "ratio": figure,
            "met": met,
        }


# Issue 15's targets, against the true floor (one round trip, held connection).
TARGETS: Final = (
    Target("postgres", "verify", 1.3, "PostgreSQL: verify (floor: psycopg)"),
    Target("postgres", "consume", 1.5, "PostgreSQL: consume (floor: psycopg)"),
    Target("postgres", "issue", 2.0, "PostgreSQL: issue (floor: psycopg)"),
    Target("postgres", "invalidate-1", 1.5, "PostgreSQL: invalidation of 1 token"),
    Target("sqlite-file", "verify", 5.0, "SQLite file: verify"),
    Target("sqlite-file", "consume", 4.0, "SQLite file: consume"),
    Target("sqlite-file", "issue", 4.0, "SQLite file: issue"),
    Target("sqlite-file", "invalidate-1", 5.0, "SQLite file: invalidation of 1 token"),
    Target("sqlite-file", "invalidate-1000", 1.5, "SQLite file: invalidation of 1,000 tokens"),
    Target("memory", "verify", 1.5, "in-memory: verify (floor: sqlite3 :memory:)"),
    Target("memory", "consume", 1.5, "in-memory: consume (floor: sqlite3 :memory:)"),
    Target("memory", "issue", 1.5, "in-memory: issue (floor: sqlite3 :memory:)"),
    Target("memory", "invalidate-1", 1.5, "in-memory: invalidation of 1 token"),
    Target("memory", "cancel", 1.5, "in-memory: cancel (floor: sqlite3 :memory:)"),
)


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target, met, missed, or not measured (storage skipped)."""
    return [target.judge(results) for target in TARGETS]


def _us(value: float) -> str:
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _ops(value: float) -> str:
    return f"{value:,.0f}"


def _stmts(row: dict[str, Any]) -> str:
    ours = row.get("statements")
    mine = "—" if ours is None else f"{ours['work']:g}"
    return f"{mine} / {row['floor_statements']}"


def _spread(timing: dict[str, Any]) -> str:
    return f"{_us(timing['min_us'])}{DASH}{_us(timing['max_us'])}"


COLUMNS: Final = (
    "operation",
    "ours µs",
    "ours ops/s",
    "floor µs",
    "floor ops/s",
    "ratio",
    "stmts ours/floor",
    f"ours min{DASH}max µs",
    f"floor min{DASH}max µs",
    "calls/round ours/floor",
)


def rows(storage: dict[str, Any]) -> list[tuple[str, ...]]:
    """One table row per operation of a storage."""
    out = []
    for op, row in storage["ops"].items():
        ours, floor = row["ours"], row["floor"]
        out.append(
            (
                op,
                _us(ours["median_us"]),
                _ops(ours["ops_per_s"]),
                _us(floor["median_us"]),
                _ops(floor["ops_per_s"]),
                f"{row['ratio']:.2f}{TIMES}",
                _stmts(row),
                _spread(ours),
                _spread(floor),
                f"{ours['calls_per_round']}/{floor['calls_per_round']}",
            )
        )
    return out


def text_table(storage: dict[str, Any]) -> str:
    """A storage's results as an aligned plain-text table."""
    body = rows(storage)
    widths = [max(len(c), *(len(r[i]) for r in body)) for i, c in enumerate(COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([line(COLUMNS), line(tuple("-" * w for w in widths)), *map(line, body)])


def markdown_table(storage: dict[str, Any]) -> str:
    """A storage's results as a Markdown table."""
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|"
    body = ["| " + " | ".join(r) + " |" for r in rows(storage)]
    return "\n".join([head, rule, *body])


def verdict_lines(results: dict[str, Any]) -> list[str]:
    """One line per target: met / MISSED / not measured, with its figure."""
    lines = []
    for v in verdicts(results):
        if v["met"] is None:
            lines.append(f"- not measured: {v['label']} (storage skipped)")
        else:
            state = "met" if v["met"] else "MISSED"
            lines.append(f"- {state}: {v['label']} — {v['ratio']:.2f}{TIMES}")
    return lines


def statement_lines(results: dict[str, Any]) -> list[str]:
    """How many data statements each operation of ours sent, and the sequence of one call
    (explicit transaction control included; the driver's own COMMIT is not seen)."""
    lines = []
    for name, storage in results.items():
        for op, row in storage["ops"].items():
            counted = row.get("statements")
            if counted is None:
                continue
            sequence = ", ".join(counted["sequence"])
            lines.append(f"- {name} {op}: {counted['work']:g} ({sequence})")
    return lines


def _loads(env: dict[str, Any]) -> str:
    before, after = env.get("load_average") or [None, None]
    if not before or not after:
        return "unknown"
    return f"{'/'.join(map(str, before))} at start, {'/'.join(map(str, after))} at end"


def markdown_page(document: dict[str, Any]) -> str:
    """The whole run as a Markdown page (what `--reference` writes)."""
    env = document["environment"]
    parts = [
        f"# magiclink benchmark — {document['reference'] or env['machine']}",
        "",
        f"Run of `{document['command']}` on {document['finished']}: "
        f"{env['cpu']} ({env['cpus']} CPUs), {env['platform']}, Python {env['python']}, "
        f"SQLAlchemy {env['sqlalchemy']}, SQLite {env['sqlite']}, psycopg {env['psycopg']}. "
        f"{document['plan']['rounds']} rounds of ~{document['plan']['round_seconds']} s per "
        f"subject and operation after {document['plan']['warmup']} warm-up calls; wall time "
        f"{document['wall_seconds']:.0f} s; load average (1, 5, 15 min) "
        f"{_loads(env)}. Median of the rounds' mean µs per call; "
        "ratio = ours / floor, same run. Method: the docstring of `bench/run.py`.",
        "",
        "## Targets",
        "",
        *verdict_lines(document["results"]),
        "",
        "Reading the tables: the ratio is what the targets judge, because both sides ran in",
        "the same process, interleaved round by round, on identically seeded databases; the",
        "absolute µs depend on the machine and its load. The floor is one raw driver",
        "statement on a held connection in autocommit (one round trip, no BEGIN/COMMIT):",
        "on SQLite a few µs, so the fixed costs of a pooled checkout, the transaction and",
        "the service weigh heavily in the ratio; on PostgreSQL a write's ratio is close to",
        "its number of round trips (BEGIN, its statements, COMMIT) against the floor's one.",
        "",
    ]
    for name, storage in document["results"].items():
        parts += [f"## {name}", "", storage["note"], "", markdown_table(storage), ""]
    for name, reason in document["skipped"].items():
        parts += [f"## {name}", "", f"Skipped: {reason}", ""]
    memory = document.get("memory")
    if memory:
        parts += [
            "## Memory (in-memory adapter)",
            "",
            f"- {memory['port_bytes']:,.0f} bytes per live token at {memory['tokens']:,} tokens "
            "added through the token port",
            f"- {memory['issued_bytes']:,.0f} bytes per issued link (token + CREATE_TOKEN audit "
            f"entry) at {memory['tokens']:,} links issued by `request_inbox_link`",
            "",
        ]
    parts += ["## Statements per operation (ours)", "", *statement_lines(document["results"]), ""]
    return "\n".join(parts)
