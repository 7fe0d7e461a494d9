"""Databases for every test that needs one: engines, clean schemas, statement counting.

Import the fixtures into a conftest (`from tests.databases import sqlite_engine, ...`, or
`from tests.databases import *`). Each fixture gives an engine whose `magiclink_*` tables
exist and are empty when the test starts:

* `sqlite_engine` — a SQLite file in the test's `tmp_path` (fresh tables per test);
* `postgres_engine`, `mariadb_engine` — the servers named by `MAGICLINK_TEST_POSTGRES_URL`
  and `MAGICLINK_TEST_MARIADB_URL` (defaults: local `test` databases), in a schema
  (PostgreSQL) or database (MariaDB) private to the test process, `magiclink_p_<pid>`. The
  tables are created once per process and emptied before each test (a DELETE per table is
  much faster than DDL); the engine is shared by the process and disposed at exit, when its
  schema is dropped. `engine.url` (with `hide_password=False`) reaches the same schema from
  a child process;
* `any_engine` — parametrised over the three (ids `sqlite`, `postgres`, `mariadb`);
* `any_uow` — a unit of work over memory and the three (ids `memory`, `sqlite`, ...);
* `uow` — a unit of work over memory and SQLite only (ids `memory`, `sqlite`): the storages
  a feature must behave alike on, with no server. It uses `sqlite_engine`, so a conftest
  that imports `uow` imports `sqlite_engine` too.

A server that cannot be reached skips its tests with the reason, except under `CI=true`
where it fails them: CI must never go green by skipping the databases.

Plain helpers for tests that build their own engines (other pools, other processes,
migrations): `sqlite_file_engine`, `sqlite_memory_engine`, `new_postgres_engine`,
`new_mariadb_engine`, `isolated_postgres_engine`, `isolated_mariadb_engine`,
`reset_schema`, `fresh_schema`, and `count_statements`.
"""

from __future__ import annotations

import atexit
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NoReturn

import pytest
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

from magiclink.adapters.memory import InMemoryUnitOfWork
from magiclink.adapters.sqlalchemy import VERSION_TABLE, SqlAlchemyUnitOfWork, metadata
from magiclink.ports import UnitOfWork

POSTGRES_URL: Final = os.environ.get(
    "MAGICLINK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL: Final = os.environ.get(
    "MAGICLINK_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
CONNECT_TIMEOUT_SECONDS: Final = 3

_shared_engines: dict[str, Engine] = {}
_unreachable: dict[str, str] = {}
_prepared: set[str] = set()


# --- Server availability -------------------------------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """Skip the current test because a database is missing; fail instead under `CI=true`."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: every database server is required)", pytrace=False)
    pytest.skip(reason)


def _connect_args(url: URL) -> dict[str, object]:
    if url.get_backend_name() == "postgresql":
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    if url.get_backend_name() in ("mysql", "mariadb"):
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return {}


def _server_engine(url: str | URL, label: str, **kwargs: object) -> Engine:
    """An engine on a server, after checking (once per URL and process) that it answers."""
    parsed = make_url(url)
    key = parsed.render_as_string(hide_password=False)
    if key in _unreachable:
        unavailable(_unreachable[key])
    kwargs.setdefault("connect_args", _connect_args(parsed))
    engine = create_engine(parsed, **kwargs)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception as error:
        engine.dispose()
        first_line = (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0]
        _unreachable[key] = f"{label} at {parsed.render_as_string()} unreachable: {first_line}"
        unavailable(_unreachable[key])
    return engine


# --- Engine factories ----------------------------------------------------------------------


def sqlite_file_engine(directory: Path, name: str = "magiclink.db", **kwargs: object) -> Engine:
    """A SQLite engine on a file in `directory` (tables not created)."""
    return create_engine(f"sqlite:///{directory / name}", **kwargs)


def sqlite_memory_engine() -> Engine:
    """A private in-memory SQLite database shared by every thread (one connection).

    Cheap enough to build per hypothesis example; tables not created.
    """
    return create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )


def new_postgres_engine(url: str | URL = POSTGRES_URL, **kwargs: object) -> Engine:
    """A new PostgreSQL engine (tables not created); skips or fails if the server is down.

    The caller disposes it.
    """
    return _server_engine(url, "PostgreSQL", **kwargs)


def new_mariadb_engine(url: str | URL = MARIADB_URL, **kwargs: object) -> Engine:
    """A new MariaDB engine (tables not created); skips or fails if the server is down.

    The caller disposes it.
    """
    return _server_engine(url, "MariaDB", **kwargs)


_NAMESPACE: Final = re.compile(r"^magiclink_[pt]_(\d+)(_[0-9a-f]+)?$")


def _unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _left_behind(name: str) -> bool:
    """True for a test schema/database whose owning process no longer runs (a killed run)."""
    match = _NAMESPACE.match(name)
    if match is None or int(match.group(1)) == os.getpid():
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def isolated_postgres_engine(**kwargs: object) -> Iterator[Engine]:
    """A PostgreSQL engine on a brand-new, empty schema of its own, dropped afterwards.

    For tests that change the schema itself (migrations). The schema is set as the
    `search_path` in the engine's URL, so `engine.url` also works in another process.
    """
    admin = new_postgres_engine()
    schema = _unique_name("magiclink_t")
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = new_postgres_engine(url, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@contextmanager
def isolated_mariadb_engine(**kwargs: object) -> Iterator[Engine]:
    """A MariaDB engine on a brand-new, empty database of its own, dropped afterwards."""
    admin = new_mariadb_engine()
    database = _unique_name("magiclink_t")
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{database}`")
    engine = new_mariadb_engine(admin.url.set(database=database), **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE `{database}`")
        admin.dispose()


def _shared_engine(kind: str) -> Engine:
    """This process's engine on its own schema (PostgreSQL) or database (MariaDB).

    Each test process works in a namespace of its own, `magiclink_p_<pid>`, so that test runs
    started at the same time (by several people, or CI jobs sharing a server) never see each
    other's rows. Namespaces left behind by killed runs are dropped; ours is dropped at exit.
    Without the privilege to create one, the tests use the configured database itself.
    """
    engine = _shared_engines.get(kind)
    if engine is not None:
        return engine
    name = f"magiclink_p_{os.getpid()}"
    if kind == "postgres":
        admin = new_postgres_engine()
        listing = "SELECT nspname FROM pg_namespace"
        create, drop = f'CREATE SCHEMA IF NOT EXISTS "{name}"', 'DROP SCHEMA IF EXISTS "{}" CASCADE'
        private_url = admin.url.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        admin = new_mariadb_engine()
        listing = "SELECT schema_name FROM information_schema.schemata"
        create, drop = f"CREATE DATABASE IF NOT EXISTS `{name}`", "DROP DATABASE IF EXISTS `{}`"
        private_url = admin.url.set(database=name)
    try:
        with admin.begin() as connection:
            for stale in connection.execute(text(listing)).scalars().all():
                if _left_behind(stale):
                    connection.exec_driver_sql(drop.format(stale))
            connection.exec_driver_sql(create)
    except Exception:
        _shared_engines[kind] = admin  # no CREATE privilege: share the configured database
        atexit.register(admin.dispose)
        return admin
    engine = _server_engine(private_url, "PostgreSQL" if kind == "postgres" else "MariaDB")

    def cleanup() -> None:
        engine.dispose()
        try:
            with admin.begin() as connection:
                connection.exec_driver_sql(drop.format(name))
        finally:
            admin.dispose()

    atexit.register(cleanup)
    _shared_engines[kind] = engine
    return engine


# --- Schema helpers ------------------------------------------------------------------------


def fresh_schema(engine: Engine) -> None:
    """Drop every magiclink table (and the migration history) and create the tables anew."""
    with engine.begin() as connection:
        metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        metadata.create_all(connection)


def reset_schema(engine: Engine) -> None:
    """Empty every magiclink table (children first); recreate them if they are missing."""
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
    except Exception:
        # Someone dropped or changed the tables (a migration test, a CLI test): start over.
        fresh_schema(engine)


def _clean_shared_engine(kind: str) -> Engine:
    engine = _shared_engine(kind)
    if kind in _prepared:
        reset_schema(engine)
    else:
        fresh_schema(engine)
        _prepared.add(kind)
    return engine


@contextmanager
def _clean_sqlite_engine(directory: Path) -> Iterator[Engine]:
    engine = sqlite_file_engine(directory)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file engine with fresh, empty magiclink tables."""
    with _clean_sqlite_engine(tmp_path) as engine:
        yield engine


@pytest.fixture
def postgres_engine() -> Engine:
    """The PostgreSQL test engine with empty magiclink tables (skips if no server)."""
    return _clean_shared_engine("postgres")


@pytest.fixture
def mariadb_engine() -> Engine:
    """The MariaDB test engine with empty magiclink tables (skips if no server)."""
    return _clean_shared_engine("mariadb")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each database in turn, with empty magiclink tables."""
    if request.param == "sqlite":
        with _clean_sqlite_engine(tmp_path) as engine:
            yield engine
    elif request.param == "postgres":
        yield _clean_shared_engine("postgres")
    else:
        yield _clean_shared_engine("mariadb")


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
        pytest.param("mariadb", id="mariadb", marks=pytest.mark.mariadb),
    ]
)
def any_uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWork]:
    """A unit of work on each storage in turn: the in-memory adapter, then each database
    (empty magiclink tables)."""
    if request.param == "memory":
        yield InMemoryUnitOfWork()
    elif request.param == "sqlite":
        with _clean_sqlite_engine(tmp_path) as engine:
            yield SqlAlchemyUnitOfWork(engine)
    else:
        yield SqlAlchemyUnitOfWork(_clean_shared_engine(request.param))


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("sqlite", id="sqlite"),
    ]
)
def uow(request: pytest.FixtureRequest) -> UnitOfWork:
    """A fresh, empty unit of work on each local storage in turn: the in-memory adapter,
    then SQLite (the `sqlite_engine` of the test, so a test that also asks for
    `sqlite_engine` sees the same database). No server is needed."""
    if request.param == "memory":
        return InMemoryUnitOfWork()
    engine: Engine = request.getfixturevalue("sqlite_engine")
    return SqlAlchemyUnitOfWork(engine)


# --- Statement counting ------------------------------------------------------------------

_TRANSACTION_CONTROL: Final = re.compile(
    r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|SET\s+TRANSACTION|PRAGMA)\b", re.IGNORECASE
)


class StatementLog:
    """The SQL statements an engine sent to the database while counting."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def work(self) -> list[str]:
        """The statements that read or write data (transaction control left out)."""
        return [s for s in self.statements if not _TRANSACTION_CONTROL.match(s)]

    @property
    def count(self) -> int:
        """How many statements read or wrote data (BEGIN, COMMIT, SAVEPOINT... not counted)."""
        return len(self.work)

    @property
    def total(self) -> int:
        """How many statements were sent, transaction control included."""
        return len(self.statements)

    def clear(self) -> None:
        """Forget what was counted so far."""
        self.statements.clear()


@contextmanager
def count_statements(engine: Engine) -> Iterator[StatementLog]:
    """Record every statement the engine executes inside the block (an executemany is one).

    Transaction control issued by the DBAPI itself (psycopg's implicit BEGIN, `commit()`)
    never reaches the cursor and is not seen; `StatementLog.count` also leaves out what the
    adapter issues explicitly (SQLite's BEGIN IMMEDIATE, SAVEPOINTs, MariaDB's SET
    TRANSACTION), so counts compare across dialects; `StatementLog.total` keeps them.
    """
    log = StatementLog()

    def record(*args: object) -> None:
        statement = args[2]
        log.statements.append(str(statement))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", record)


__all__ = [
    "MARIADB_URL",
    "POSTGRES_URL",
    "StatementLog",
    "any_engine",
    "any_uow",
    "count_statements",
    "fresh_schema",
    "isolated_mariadb_engine",
    "isolated_postgres_engine",
    "mariadb_engine",
    "new_mariadb_engine",
    "new_postgres_engine",
    "postgres_engine",
    "reset_schema",
    "sqlite_engine",
    "sqlite_file_engine",
    "sqlite_memory_engine",
    "unavailable",
    "uow",
]
