"""Issue 16 (SPEC §5.6): every CLI command, on careless or hostile input, exits 1 or 2 with one
line (or one JSON object with --json) and no traceback; read-only commands create no file."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magiclink.adapters.sqlalchemy import upgrade_to
from magiclink.cli import main, raw_token_of
from tests.cli.test_cli import add_booking
from tests.integration.test_sqlalchemy_migrations import HEAD_REVISION

RAW = re.compile(r"token=([0-9a-f]{64})")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def failure(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    assert run("db", "upgrade", "--database-url", url).exit_code == 0
    return url


def test_read_only_commands_never_create_a_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 item 6: a mistyped SQLite path, or no URL and no ./magiclink.db, leaves no file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAGICLINK_DATABASE_URL", raising=False)
    typo = tmp_path / "typo.db"
    assert "no database file" in failure(run("stats", "--database-url", f"sqlite:///{typo}"))
    assert "no database file" in failure(run("stats"))
    assert "no database file" in failure(run("db", "current"))
    assert list(tmp_path.iterdir()) == []
    missing_dir = failure(run("stats", "--database-url", f"sqlite:///{tmp_path}/nope/x.db"))
    assert missing_dir == f"error: no such directory: {tmp_path}/nope"


def test_old_schema_names_its_revision(tmp_path: Path) -> None:
    """Issue 16 item 7: a database at 0001 gets the upgrade hint, not a raw SQL error."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    upgrade_to(engine, "0001")
    engine.dispose()
    message = failure(run("link", "list", "--booking", "1", "--database-url", url))
    assert message == "error: this database is at revision 0001; run `magiclink db upgrade`"


def test_bad_urls_and_files_are_explained(tmp_path: Path) -> None:
    """Issue 16 items 5 and 8: postgres:// hint, bad driver option, corrupt file."""
    assert "postgresql+psycopg://" in failure(run("stats", "--database-url", "postgres://x@h/db"))
    bad_charset = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb"
    assert failure(run("stats", "--database-url", bad_charset)).startswith("error: ")
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    for command in (
        ["stats"],
        ["db", "current"],
        ["db", "upgrade"],
        ["link", "list", "--booking", "1"],
    ):
        message = failure(run(*command, "--database-url", f"sqlite:///{corrupt}"))
        assert message == "error: the file is not a SQLite database (corrupt or another format)"
        as_json = run(*command, "--json", "--database-url", f"sqlite:///{corrupt}")
        assert json.loads(as_json.stderr)["error"].startswith("the file is not a SQLite")


@pytest.mark.parametrize(
    "args",
    [
        ["purge", "--expired-for", "99999999999d", "--dry-run"],
        ["purge", "--expired-for", "1000000000d"],
        ["link", "list", "--booking", str(2**63)],
        ["link", "revoke", "--booking", str(2**63)],
    ],
)
def test_out_of_range_input_is_a_usage_error(args: list[str], db_url: str) -> None:
    """Issue 16 items 5 and 8: overflow is a usage error (exit 2), never a traceback."""
    result = run(*args, "--database-url", db_url)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_json_errors_are_one_object_on_stderr(db_url: str) -> None:
    """Issue 16 item 8: with --json a refusal is one JSON object, same exit code."""
    result = run("link", "verify", "nothex", "--json", "--database-url", db_url)
    assert result.exit_code == 1
    assert json.loads(result.stderr) == {"error": "Invalid token", "exit_code": 1}
    assert result.stdout == ""


def test_verify_accepts_a_pasted_link(db_url: str) -> None:
    """Issue 16 item 8: `link verify` takes the whole URL of the e-mail."""
    issued = json.loads(
        run("link", "issue", "ada@example.com", "--json", "--database-url", db_url).output
    )
    verified = run("link", "verify", issued["url"], "--json", "--database-url", db_url)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["valid"] is True
    assert raw_token_of("https://x.test/m?a=1&token=abc") == "abc"
    assert raw_token_of("abc") == "abc"


def test_block_unblock_and_db_commands_speak_json(db_url: str) -> None:
    """Issue 16 item 8: --json on guest block/unblock and db upgrade/current."""
    blocked = json.loads(
        run("guest", "block", "m@example.com", "--json", "--database-url", db_url).output
    )
    assert blocked["blocked"] is True and blocked["email"] == "m@example.com"
    unblocked = json.loads(
        run("guest", "unblock", "m@example.com", "--json", "--database-url", db_url).output
    )
    assert unblocked["blocked"] is False
    for command in ("upgrade", "current"):
        data = json.loads(run("db", command, "--json", "--database-url", db_url).output)
        assert data == {"revision": HEAD_REVISION}


def test_demo_ignores_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16 item 3: the demo never writes into MAGICLINK_DATABASE_URL's database."""
    operators = tmp_path / "operators.db"
    url = f"sqlite:///{operators}"
    assert run("db", "upgrade", "--database-url", url).exit_code == 0
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MAGICLINK_DATABASE_URL", url)
    assert run("demo").exit_code == 0
    assert (work / "magiclink-demo.db").exists()
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        for table in ("magiclink_guests", "magiclink_bookings", "magiclink_tokens"):
            assert connection.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0
    engine.dispose()


COMMANDS = [
    ["link", "issue"],
    ["link", "verify"],
    ["link", "revoke", "--booking"],
    ["link", "list", "--booking"],
    ["guest", "block"],
    ["guest", "unblock"],
    ["audit", "--guest"],
    ["audit", "--booking"],
    ["purge", "--expired-for"],
    ["stats", "--database-url"],
    ["db", "current", "--database-url"],
    ["outbox", "status", "--database-url"],
    ["outbox", "retry"],
    ["link", "list", "--json", "--booking"],
    ["purge", "--dry-run", "--batch-size"],
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    command=st.sampled_from(COMMANDS),
    word=st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40
    )
    | st.integers(-(2**70), 2**70).map(str),
    as_json=st.booleans(),
)
def test_fuzzed_arguments_never_traceback(
    command: list[str], word: str, as_json: bool, db_url: str
) -> None:
    """Issue 16: any argument gives exit 0, 1 or 2 and never an uncaught exception; a failure
    is one line on stderr, or with --json one JSON object carrying the same exit code."""
    args = [*command, word] + (["--json"] if as_json else [])
    if "--database-url" not in command:
        args += ["--database-url", db_url]
    result = run(*args)
    as_json = "--json" in args
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        if as_json:
            json.loads(result.stdout)
        return
    assert result.stdout == "", (args, result.output)
    if as_json:
        assert json.loads(result.stderr)["exit_code"] == result.exit_code, (args, result.stderr)
    else:
        assert len(result.stderr.splitlines()) == 1, (args, result.stderr)
        assert result.stderr.startswith("error: "), (args, result.stderr)


READ_ONLY = [
    ["stats"],
    ["db", "current"],
    ["link", "list", "--booking", "1"],
    ["link", "verify", "abc"],
    ["audit", "--booking", "1"],
    ["purge", "--expired-for", "1d", "--dry-run"],
    ["outbox", "status"],
]


@settings(max_examples=40, deadline=None)
@given(
    command=st.sampled_from(READ_ONLY),
    name=st.text(st.characters(whitelist_categories=["L", "N"]) | st.sampled_from("._-?#%"))
    .filter(lambda n: n.strip("."))
    .map(lambda n: n[:40]),
    as_json=st.booleans(),
)
def test_fuzzed_read_only_commands_never_create_a_file(
    command: list[str], name: str, as_json: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 16 item 6: a read-only command on any SQLite path creates nothing, and says so
    in one line (or one JSON object) with exit 1."""
    folder = tmp_path_factory.mktemp("ro")
    url = f"sqlite:///{folder / name}"
    result = run(*command, "--database-url", url, *(["--json"] if as_json else []))
    assert result.exit_code in (1, 2), (command, url, result.output)
    assert list(folder.iterdir()) == [], (command, url)
    assert "Traceback" not in result.output
    if as_json:
        assert json.loads(result.stderr)["exit_code"] == result.exit_code
    else:
        assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["link", "list", "--booking", str(2**63)], "Invalid value for '--booking'"),
        (["purge", "--expired-for", "1000000d"], "Invalid value for '--expired-for'"),
        (["link", "list"], "Missing option '--booking'"),
        (["link", "verify"], "Missing argument 'TOKEN'"),
        (["stats", "--bogus"], "No such option"),
        (["link", "revoke", "--booking", "1", "--reason", "because"], "'--reason'"),
        (["audit"], "give exactly one of"),
    ],
)
def test_usage_errors_are_one_json_object_with_exit_2(args: list[str], says: str) -> None:
    """Issue 16 item 8: with --json, click's own usage errors (bad value, missing argument,
    unknown option) are one JSON object on stderr, exit code 2; without, one `error:` line
    naming the command's --help."""
    as_json = run(*args, "--json")
    assert as_json.exit_code == 2, as_json.output
    assert as_json.stdout == ""
    error = json.loads(as_json.stderr)
    assert error["exit_code"] == 2 and says in error["error"], error
    plain = run(*args)
    line = failure(plain, 2)
    assert line.startswith("error: ") and says in line and "--help" in line


def test_json_flag_before_a_failing_database_is_one_object(tmp_path: Path) -> None:
    """Issue 16 item 8: a database failure (exit 1) under --json is one JSON object too."""
    result = run("stats", "--json", "--database-url", "postgres://x@h/d")
    assert result.exit_code == 1
    error = json.loads(result.stderr)
    assert error["exit_code"] == 1 and "postgresql+psycopg://" in error["error"]


def test_expired_for_units_are_in_the_help() -> None:
    """Issue 16 item 8: `--expired-for` documents its units s m h d w."""
    shown = " ".join(run("purge", "--help").output.split())
    assert "s m h d w" in shown and "minutes" in shown
    assert raw_token_of("plain") == "plain"


def test_list_used_column_is_not_the_revocation_time(db_url: str) -> None:
    """Issue 16 item 8: a revoked, never-used link shows `-` under "used", not the revocation
    time; the JSON keeps `used_at` null."""
    booking_id = str(add_booking(db_url))
    issued = run(
        "link", "issue", "ada@example.com", "--booking", booking_id, "--database-url", db_url
    )
    assert issued.exit_code == 0, issued.output
    assert run("link", "revoke", "--booking", booking_id, "--database-url", db_url).exit_code == 0
    listed = json.loads(
        run("link", "list", "--booking", booking_id, "--json", "--database-url", db_url).output
    )
    assert listed and all(t["invalidated"] for t in listed)
    table = run("link", "list", "--booking", booking_id, "--database-url", db_url).output
    rows = [line for line in table.splitlines() if "invalidated" in line]
    assert len(rows) == len(listed)
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
    for row in rows:
        assert len(stamp.findall(row)) == 2, row  # created and expires; "used" is `-`


@pytest.mark.parametrize(
    "url",
    ["http://evil.example.com/m", "javascript:alert(1)", "https://u:p@x.example/m", "ftp://x/"],
)
def test_a_bad_link_base_url_is_a_usage_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """§9.6: a link base URL that Settings refuses (plain http off localhost, another scheme,
    user info) is exit 2 with one line, or one JSON object with --json."""
    monkeypatch.setenv("MAGICLINK_LINK_BASE_URL", url)
    line = failure(run("outbox", "status", "--database-url", db_url), 2)
    assert line.startswith("error: MAGICLINK_LINK_BASE_URL")
    as_json = run("outbox", "status", "--json", "--database-url", db_url)
    assert as_json.exit_code == 2 and json.loads(as_json.stderr)["exit_code"] == 2


def test_two_demos_at_once_in_one_folder(tmp_path: Path) -> None:
    """Issue 16 item 8: two demos started together in one folder both finish (a lock)."""
    env = {k: v for k, v in os.environ.items() if k != "MAGICLINK_DATABASE_URL"}
    command = [sys.executable, "-m", "magiclink.cli", "demo"]
    runs = [
        subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in runs:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
        assert b"Traceback" not in out + err
