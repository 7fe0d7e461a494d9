"""The operator's command line (issue 5, SPEC §5.6), through click's test runner."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, event

from magiclink import Booking, BookingStatus, MagicLinkToken
from magiclink.adapters.sqlalchemy import SqlAlchemyUnitOfWork
from magiclink.cli import main, parse_duration
from magiclink.ports import UNSAVED_ID, SystemClock

RAW = re.compile(r"token=([0-9a-f]{64})")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output
    return url


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def one_line_error(result: Result) -> str:
    """The refusal printed by a failed command: one line, no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def add_booking(url: str, email: str = "ada@example.com") -> int:
    """A scheduled booking stored straight through the ports (the CLI does not book)."""
    engine = create_engine(url)
    try:
        now = SystemClock().now()
        with SqlAlchemyUnitOfWork(engine).transaction() as tx:
            booking = tx.bookings.add(
                Booking(
                    id=UNSAVED_ID,
                    uid=f"uid-{email}",
                    mentor_id=7,
                    guest_email=email,
                    start_time=now + timedelta(days=1),
                    end_time=now + timedelta(days=1, minutes=30),
                    status=BookingStatus.SCHEDULED,
                    revision=0,
                )
            )
            tx.commit()
        return booking.id
    finally:
        engine.dispose()


def test_db_upgrade_and_current(db_url: str) -> None:
    current = run("db", "current", "--database-url", db_url)
    assert current.exit_code == 0
    revision = current.output.strip()
    assert revision not in {"", "none"}
    again = run("db", "upgrade", "--database-url", db_url)
    assert again.exit_code == 0 and revision in again.output


def test_database_url_from_environment(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGICLINK_DATABASE_URL", db_url)
    assert run("db", "current").output.strip() not in {"", "none"}


def test_issue_verify_revoke_list_round_trip(db_url: str) -> None:
    booking_id = add_booking(db_url)
    issued = run(
        "link",
        "issue",
        "ada@example.com",
        "--booking",
        str(booking_id),
        "--json",
        "--database-url",
        db_url,
    )
    assert issued.exit_code == 0, issued.output
    data = json.loads(issued.output)
    raw = RAW.search(data["url"]).group(1)  # type: ignore[union-attr]
    assert data["booking_id"] == booking_id

    verified = run("link", "verify", raw, "--database-url", db_url)
    assert verified.exit_code == 0 and "Valid" in verified.output

    revoked = run("link", "revoke", "--booking", str(booking_id), "--database-url", db_url)
    assert revoked.exit_code == 0
    assert "Invalidated 1 token(s)" in revoked.output and "manual_revocation" in revoked.output

    refused = run("link", "verify", raw, "--database-url", db_url)
    assert one_line_error(refused) == "error: Token expired or used"

    listed = run("link", "list", "--booking", str(booking_id), "--json", "--database-url", db_url)
    tokens = json.loads(listed.output)
    assert [t["state"] for t in tokens] == ["invalidated (manual_revocation)"]
    assert raw not in listed.output  # raw tokens are never stored, so never listed
    table = run("link", "list", "--booking", str(booking_id), "--database-url", db_url)
    assert "invalidated" in table.output


def test_refusals_are_one_line_with_exit_1(db_url: str) -> None:
    assert one_line_error(run("link", "verify", "nothex", "--database-url", db_url)) == (
        "error: Invalid token"
    )
    assert one_line_error(run("link", "verify", "a" * 64, "--database-url", db_url)) == (
        "error: Invalid token"
    )
    unknown = run("link", "issue", "ada@example.com", "--booking", "999", "--database-url", db_url)
    # `link issue` acts as the guest would (rate limits apply): the guest path answers an
    # unknown booking like someone else's (§9.5, no enumeration).
    assert one_line_error(unknown) == "error: Access denied"
    assert run("link", "issue", "ada@example.com", "--database-url", db_url).exit_code == 0
    limited = one_line_error(run("link", "issue", "ada@example.com", "--database-url", db_url))
    assert limited.startswith("error: Too many requests")


def test_revoke_or_list_of_unknown_booking_says_so_with_exit_1(db_url: str) -> None:
    """Issue 16 item 8: the library's invalidation of an unknown booking is a no-op (R9.3), but
    the operator is told the booking does not exist (exit 1), as one JSON object with --json."""
    for command in ("revoke", "list"):
        text = run("link", command, "--booking", "424242", "--database-url", db_url)
        assert one_line_error(text) == "error: no booking 424242"
        as_json = run("link", command, "--booking", "424242", "--json", "--database-url", db_url)
        assert as_json.exit_code == 1
        assert json.loads(as_json.output) == {"error": "no booking 424242", "exit_code": 1}


def test_block_and_unblock(db_url: str) -> None:
    assert (
        "Blocked abuse@example.com"
        in run("guest", "block", " Abuse@Example.com", "--database-url", db_url).output
    )
    denied = run("link", "issue", "abuse@example.com", "--database-url", db_url)
    assert one_line_error(denied) == "error: Access denied"
    assert run("guest", "unblock", "abuse@example.com", "--database-url", db_url).exit_code == 0
    assert run("link", "issue", "abuse@example.com", "--database-url", db_url).exit_code == 0
    unknown = run("guest", "unblock", "nobody@example.com", "--database-url", db_url)
    assert "no guest" in one_line_error(unknown)
    assert one_line_error(run("guest", "block", "not-an-email", "--database-url", db_url)) == (
        "error: Invalid e-mail address: it must contain exactly one @"  # §9.2 says why
    )


def test_audit_by_booking_and_by_guest(db_url: str) -> None:
    booking_id = add_booking(db_url)
    run("link", "issue", "ada@example.com", "--booking", str(booking_id), "--database-url", db_url)
    run("link", "revoke", "--booking", str(booking_id), "--database-url", db_url)
    entries = json.loads(
        run("audit", "--booking", str(booking_id), "--json", "--database-url", db_url).output
    )
    assert [e["action"] for e in entries] == ["INVALIDATE_TOKEN", "CREATE_TOKEN"]
    assert entries[0]["metadata"]["reason"] == "manual_revocation"
    assert all(e["resource_id"] == str(booking_id) for e in entries)
    by_guest = run(
        "audit", "--guest", "ADA@example.com", "--limit", "1", "--json", "--database-url", db_url
    )
    assert len(json.loads(by_guest.output)) == 1
    table = run("audit", "--booking", str(booking_id), "--database-url", db_url)
    assert "INVALIDATE_TOKEN" in table.output and "CREATE_TOKEN" in table.output
    assert "no guest" in one_line_error(
        run("audit", "--guest", "ghost@example.com", "--database-url", db_url)
    )


@pytest.mark.parametrize(
    "args",
    [
        ["audit"],
        ["audit", "--booking", "1", "--guest", "a@example.com"],
        ["audit", "--booking", "0"],
        ["purge", "--expired-for", "banana"],
        ["purge"],
        ["link", "revoke", "--booking", "1", "--reason", "because"],
        ["link", "list"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(args: list[str], db_url: str) -> None:
    result = run(*args, "--database-url", db_url) if args != ["nonsense"] else run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_unreachable_or_invalid_database_is_one_line(tmp_path: Path) -> None:
    down = run("stats", "--database-url", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert one_line_error(down).startswith("error: cannot reach the database")
    assert one_line_error(run("stats", "--database-url", "notaurl")).startswith(
        "error: invalid database URL"
    )
    empty = run("stats", "--database-url", f"sqlite:///{tmp_path / 'empty.db'}")
    assert "magiclink db upgrade" in one_line_error(empty)


def test_stats(db_url: str) -> None:
    booking_id = add_booking(db_url)
    run("link", "issue", "ada@example.com", "--booking", str(booking_id), "--database-url", db_url)
    run("link", "issue", "bob@example.com", "--database-url", db_url)
    run("link", "revoke", "--booking", str(booking_id), "--database-url", db_url)
    data = json.loads(run("stats", "--json", "--database-url", db_url).output)
    assert data["live"] == 1 and data["invalidated"] == 1
    assert data["invalidated_by_reason"] == {"manual_revocation": 1}
    assert "live" in run("stats", "--database-url", db_url).output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        ("30s", timedelta(seconds=30)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["banana", "", "7", "d7", "0d", "-1d", "7d banana", "1.5h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.fixture
def delete_statements() -> Iterator[list[str]]:
    """Every DELETE statement any engine executes while the test runs."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", listener)
    yield seen
    event.remove(Engine, "before_cursor_execute", listener)


def test_purge_deletes_exactly_the_expired_in_batches(
    db_url: str, delete_statements: list[str]
) -> None:
    """10,000 expired + 100 live tokens → only the expired go, in ⌈10,000/batch⌉ DELETEs."""
    engine = create_engine(db_url)
    now = SystemClock().now()
    with SqlAlchemyUnitOfWork(engine).transaction() as tx:
        guest, _ = tx.guests.get_or_create("bulk@example.com", now=now, last_request_at=None)
        for i in range(10_100):
            expired = i < 10_000
            tx.tokens.add(
                MagicLinkToken.new(
                    token_hash=f"{i:064x}",
                    guest_id=guest.id,
                    booking_id=None,
                    booking_revision=None,
                    expires_at=now - timedelta(days=8) if expired else now + timedelta(minutes=15),
                    created_at=now - timedelta(days=9) if expired else now,
                )
            )
        tx.commit()
    engine.dispose()
    audit_before = json.loads(
        run("audit", "--guest", "bulk@example.com", "--json", "--database-url", db_url).output
    )

    dry = json.loads(
        run("purge", "--expired-for", "7d", "--dry-run", "--json", "--database-url", db_url).output
    )
    assert dry == {"matched": 10_000, "deleted": 0, "dry_run": True}
    assert delete_statements == []

    batch = 3_000
    result = run(
        "purge", "--expired-for", "7d", "--batch-size", str(batch), "--database-url", db_url
    )
    assert result.exit_code == 0, result.output
    assert "Deleted 10000 token(s)" in result.output
    assert len(delete_statements) == math.ceil(10_000 / batch)

    stats = json.loads(run("stats", "--json", "--database-url", db_url).output)
    assert stats["live"] == 100 and stats["expired"] == 0
    audit_after = json.loads(
        run("audit", "--guest", "bulk@example.com", "--json", "--database-url", db_url).output
    )
    assert audit_after == audit_before
    again = run("purge", "--expired-for", "7d", "--database-url", db_url)
    assert "Deleted 0 token(s)" in again.output


def test_demo_runs_the_whole_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("demo")
    assert result.exit_code == 0, result.output
    out = result.output
    assert (tmp_path / "magiclink-demo.db").exists()
    assert "old link (stale): refused - Token expired or used" in out
    assert "new link: accepted" in out
    assert "fresh link: accepted" in out
    assert "This session has already been rated" in out
    for who in ("Grace's link", "Linus's link", "Barbara's link", "rating link"):
        assert f"{who}: refused - Token expired or used" in out
    for reason in ("booking_rescheduled", "rating_submitted"):
        assert reason in out
    assert "invalidation latency p99" in out
    second = run("demo")  # a fresh file each time: the demo is repeatable
    assert second.exit_code == 0, second.output
