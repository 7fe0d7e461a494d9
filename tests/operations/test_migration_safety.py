"""Issue 16 (SPEC §5.6, R6.1): `db upgrade` never reports a half-built schema, and is safe to
run from several instances at once (a database lock serialises them)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from magiclink import MagicLinkError
from magiclink.adapters.sqlalchemy import (
    VERSION_TABLE,
    SchemaMismatch,
    current_revision,
    missing_from_head,
    revision_shapes,
    upgrade_to,
    upgrade_to_head,
)
from tests.databases import isolated_mariadb_engine, isolated_postgres_engine, sqlite_file_engine

HEAD = list(revision_shapes())[-1]
WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def empty(kind: str, tmp_path: Path, name: str = "m.db") -> Any:
    if kind == "postgres":
        return isolated_postgres_engine()
    if kind == "mariadb":
        return isolated_mariadb_engine()

    class _Sqlite:
        def __enter__(self) -> sa.Engine:
            self.engine = sqlite_file_engine(tmp_path, name)
            return self.engine

        def __exit__(self, *exc: object) -> None:
            self.engine.dispose()

    return _Sqlite()


def test_revision_shapes_are_learnt_from_the_migrations() -> None:
    """Data-driven shapes: 0001 has no booking_revision, the head has every metadata table."""
    shapes = revision_shapes()
    assert "booking_revision" not in shapes["0001"]["magiclink_tokens"]
    assert "booking_revision" in shapes[HEAD]["magiclink_tokens"]
    assert "index ix_magiclink_tokens_expires_at" in shapes[HEAD]["magiclink_tokens"]
    assert set(shapes[HEAD]) >= {"magiclink_tokens", "magiclink_audit_log", "magiclink_ratings"}


def test_0007_adds_the_booking_operation_id_and_nothing_else() -> None:
    """Issue 12.2: revision 0007 adds one nullable column, `magiclink_bookings.operation_id`
    (no index: it is read with the row, found by id or uid), and is the head."""
    shapes = revision_shapes()
    assert HEAD == "0007"
    added = {
        table: parts - shapes["0006"].get(table, frozenset())
        for table, parts in shapes["0007"].items()
    }
    assert {table: parts for table, parts in added.items() if parts} == {
        "magiclink_bookings": {"operation_id"}
    }


def test_0007_cut_short_after_its_ddl_is_completed(kind: str, tmp_path: Path) -> None:
    """R6.1 / issue 16: a 0007 run whose ADD COLUMN committed (MariaDB commits each DDL
    statement) but whose version row did not is completed by the next upgrade, which does
    not add the column twice, on every database."""
    with empty(kind, tmp_path) as engine:
        upgrade_to(engine, "0006")
        with engine.begin() as connection:
            connection.execute(
                sa.text("ALTER TABLE magiclink_bookings ADD COLUMN operation_id VARCHAR(32)")
            )
        assert current_revision(engine) == "0006"
        upgrade_to_head(engine)
        assert current_revision(engine) == HEAD
        assert missing_from_head(engine) == []


def test_half_built_unversioned_schema_is_completed(kind: str, tmp_path: Path) -> None:
    """Issue 16 item 1 repro: tables dropped and history deleted → the next upgrade does not
    stamp a revision over the hole; it creates what is missing and ends complete."""
    with empty(kind, tmp_path) as engine:
        upgrade_to_head(engine)
        with engine.begin() as connection:
            for table in ("magiclink_audit_log", "magiclink_incidents", "magiclink_ratings"):
                connection.execute(sa.text(f"DROP TABLE {table}"))
            connection.execute(sa.text(f"DELETE FROM {VERSION_TABLE}"))
        assert len(missing_from_head(engine)) >= 3
        upgrade_to_head(engine)
        assert current_revision(engine) == HEAD
        assert missing_from_head(engine) == []


def test_damaged_table_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    """A present table that lacks columns it was created with matches no revision: refused,
    the missing column named, nothing recorded."""
    with empty("sqlite", tmp_path) as engine:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE magiclink_tokens (id INTEGER PRIMARY KEY)"))
        with pytest.raises(SchemaMismatch, match="magiclink_tokens: token_hash"):
            upgrade_to_head(engine)
        assert current_revision(engine) is None


def test_missing_index_alone_is_not_recognised(tmp_path: Path) -> None:
    """Every index counts: a schema lacking one index is not stamped as the head; the upgrade
    recreates the index."""
    with empty("sqlite", tmp_path) as engine:
        upgrade_to_head(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_magiclink_audit_log_guest_id"))
            connection.execute(sa.text(f"DROP TABLE {VERSION_TABLE}"))
        assert missing_from_head(engine) == [
            "magiclink_audit_log: index ix_magiclink_audit_log_guest_id"
        ]
        upgrade_to_head(engine)
        assert missing_from_head(engine) == []


class Interrupted(Exception):
    """Raised from a cursor hook to cut an upgrade short."""


def write_count(engine: sa.Engine) -> int:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        upgrade_to_head(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def interrupt_at(engine: sa.Engine, n: int) -> None:
    """Run a first upgrade that fails at its n-th writing statement (a crash, a ^C)."""
    seen = [0]

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            seen[0] += 1
            if seen[0] == n:
                raise Interrupted(statement)

    sa.event.listen(engine, "before_cursor_execute", hook)
    try:
        with pytest.raises((Interrupted, MagicLinkError)):
            upgrade_to_head(engine)
    finally:
        sa.event.remove(engine, "before_cursor_execute", hook)


def test_interrupted_upgrade_never_reports_a_half_built_schema(kind: str, tmp_path: Path) -> None:
    """R6.1 / issue 16: cut the first upgrade at every writing statement; the next upgrade
    ends complete (head recorded, nothing missing) on every database — on MariaDB, whose DDL
    commits statement by statement, by creating only what the cut-short run did not."""
    with empty(kind, tmp_path, "probe.db") as probe:
        total = write_count(probe)
    assert total >= 10
    for n in range(1, total + 1):
        with empty(kind, tmp_path, f"cut{n}.db") as engine:
            interrupt_at(engine, n)
            upgrade_to_head(engine)
            assert current_revision(engine) == HEAD, n
            assert missing_from_head(engine) == [], n


def _upgrade_in_child(url: str, barrier: Any, results: Any) -> None:
    from click.testing import CliRunner

    from magiclink.cli import main

    barrier.wait()
    result = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    results.put((result.exit_code, result.output))


@pytest.mark.parametrize(
    "server",
    [
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def test_four_upgrades_at_once_all_succeed_with_one_schema(server: str) -> None:
    """Issue 16 item 2: four processes run `magiclink db upgrade` at the same moment; the
    database lock serialises them: all exit 0 and the schema is complete, with one history row."""
    factory = isolated_postgres_engine if server == "postgres" else isolated_mariadb_engine
    with factory() as engine:
        url = engine.url.render_as_string(hide_password=False)
        spawn = multiprocessing.get_context("spawn")
        barrier, results = spawn.Barrier(4), spawn.Queue()
        children = [
            spawn.Process(target=_upgrade_in_child, args=(url, barrier, results)) for _ in range(4)
        ]
        for child in children:
            child.start()
        outcomes = [results.get(timeout=300) for _ in children]
        for child in children:
            child.join()
        assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
        assert current_revision(engine) == HEAD
        assert missing_from_head(engine) == []
        with engine.connect() as connection:
            rows = connection.execute(sa.text(f"SELECT * FROM {VERSION_TABLE}")).all()
        assert len(rows) == 1
