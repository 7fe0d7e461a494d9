"""Issue 16 (SPEC §5.6): every CLI command, on careless or hostile input, exits 1 or 2 with one
line (or one JSON object with --json) and no traceback; read-only commands create no file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magiclink.adapters.sqlalchemy import upgrade_to
from magiclink.cli import main, raw_token_of
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
    message = failure(run("stats", "--database-url", f"sqlite:///{corrupt}"))
    assert "not a SQLite database" in message


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
    """Issue 16: any argument gives exit 0, 1 or 2 and never an uncaught exception."""
    args = [*command, word] + (["--json"] if as_json else [])
    if "--database-url" not in command:
        args += ["--database-url", db_url]
    result = run(*args)
    assert result.exit_code in (0, 1, 2), (args, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    assert "Traceback" not in result.output
