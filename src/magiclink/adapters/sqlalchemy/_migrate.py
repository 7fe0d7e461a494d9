"""Creating and upgrading the magiclink tables, with Alembic configured in code.

The Alembic environment ships inside the package (`migrations/`); there is no alembic.ini.
Its history lives in its own table, `magiclink_alembic_version`, so a host that runs its own
Alembic on the same database keeps its own `alembic_version` untouched.

* `create_schema(engine)` creates missing tables from `metadata` and, on a database that has
  no magiclink history yet, records the current head so later upgrades start from there.
* `upgrade_to_head(engine)` applies every pending revision. A database holding the tables of
  the original plan but no history (they were created outside Alembic) is first recognised
  by its shape and stamped with the matching revision, then upgraded.
* `current_revision(engine)` says where a database stands (None: no history).

On SQLite the whole upgrade runs in one `BEGIN IMMEDIATE` transaction (SQLite has
transactional DDL); on PostgreSQL in one transaction; on MariaDB each DDL statement commits.

Upgrades are serialised by a database lock, so several instances of one deploy may run them
at once: PostgreSQL `pg_advisory_xact_lock` (per schema), MariaDB/MySQL `GET_LOCK` (per
database), SQLite's write lock (`BEGIN IMMEDIATE`). The others wait up to
`LOCK_TIMEOUT_SECONDS`, then find the work done.

The shape check is data-driven: each revision's tables, columns and indexes are learnt by
rehearsing the migrations on an in-memory SQLite database, so a new revision needs no change
here. Unversioned tables are recognised as a revision only when *every* table, column and
index of it is present; tables that match no revision are refused with the missing objects
named (`SchemaMismatch`).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from magiclink.adapters.sqlalchemy._errors import translate_errors
from magiclink.adapters.sqlalchemy._tables import metadata
from magiclink.domain._errors import StorageError

VERSION_TABLE: Final = "magiclink_alembic_version"
SCRIPT_LOCATION: Final = str(Path(__file__).with_name("migrations"))
HEAD: Final = "head"
# The revision whose schema the original plan's tables have: tokens without booking_revision.
ORIGINAL_PLAN_REVISION: Final = "0001"
# The revision at which tokens gained booking_revision (the shape `metadata` has today).
BOOKING_REVISION_REVISION: Final = "0002"
# How long an upgrade waits for another instance's upgrade to finish.
LOCK_TIMEOUT_SECONDS: Final = 600

# A schema shape: table name -> the names of its columns and of its indexes.
Shape = Mapping[str, frozenset[str]]


class SchemaMismatch(StorageError):
    """Magiclink tables exist but match no revision: the message names what is missing."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic `Config` for the magiclink migrations, bound to `connection` if given.

    Useful to run other Alembic commands (history, downgrade, offline SQL) programmatically.
    """
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def create_schema(engine: Engine) -> None:
    """Create the magiclink tables that do not exist yet (for a new database).

    On a database without magiclink history this also records the head revision. For a
    database created by an earlier version of the library, call `upgrade_to_head` instead.

    Raises:
        StorageError: the database refused the DDL or could not be reached.
    """
    with translate_errors(), _migration_connection(engine) as connection:
        unversioned = _current(connection) is None
        metadata.create_all(connection)
        if unversioned:
            command.stamp(alembic_config(connection), HEAD)


def upgrade_to_head(engine: Engine) -> None:
    """Apply every pending migration; a no-op on an up-to-date database.

    Raises:
        StorageError: a migration failed or the database could not be reached.
    """
    upgrade_to(engine, HEAD)


def upgrade_to(engine: Engine, revision: str) -> None:
    """Apply the migrations up to `revision` (an Alembic revision id, or "head").

    Raises:
        StorageError: a migration failed or the database could not be reached.
    """
    with translate_errors(), _migration_connection(engine) as connection:
        config = alembic_config(connection)
        if _current(connection) is None:
            baseline = _recognise_unversioned(connection)
            if baseline is not None:
                command.stamp(config, baseline)
        command.upgrade(config, revision)
        reached = _current(connection)
        if reached is not None:
            _verify_head(connection, reached)


def current_revision(engine: Engine) -> str | None:
    """The magiclink revision the database is at, or None when it has no magiclink history.

    Raises:
        StorageError: the database could not be reached.
    """
    with translate_errors(), engine.connect() as connection:
        return _current(connection)


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _recognise_unversioned(connection: Connection) -> str | None:
    """The newest revision whose every table, column and index is present; None when no
    revision is complete (the upgrade then starts from the beginning and creates only what is
    missing); `SchemaMismatch` when a present table lacks columns it was created with."""
    present = _shape_of(connection)
    if not present:
        return None
    shapes = revision_shapes()
    matching = [rev for rev, shape in shapes.items() if not _missing(shape, present)]
    if matching:
        return matching[-1]
    # Columns a table was created with (indexes and later columns the upgrade adds).
    born = {t: p for shape in reversed(shapes.values()) for t, p in shape.items()}
    columns = {t: frozenset(p for p in born[t] if not p.startswith("index ")) for t in born}
    damaged = _missing({t: columns[t] for t in present if t in columns}, present)
    if damaged:
        raise SchemaMismatch(
            "the magiclink tables match no revision; missing: " + ", ".join(damaged)
        )
    return None


def _verify_head(connection: Connection, revision: str) -> None:
    """Refuse to report `revision` over a schema that lacks part of it."""
    expected = revision_shapes().get(revision)
    missing = [] if expected is None else _missing(expected, _shape_of(connection))
    if missing:
        raise SchemaMismatch(
            f"revision {revision} is recorded but incomplete; missing: " + ", ".join(missing)
        )


def skip_present_ddl(impl: Any, connection: Connection) -> None:
    """Make this migration context's CREATE TABLE / ADD COLUMN / CREATE INDEX skip objects that
    already exist, so a revision cut short on MariaDB (which commits each DDL statement) is
    completed by running it again. Data statements of a revision must be idempotent."""
    create_table, add_column, create_index = impl.create_table, impl.add_column, impl.create_index

    def columns(table: str) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns(table)}

    def guarded_create_table(table: Any, **kw: Any) -> None:
        if not inspect(connection).has_table(table.name):
            create_table(table, **kw)

    def guarded_add_column(table_name: str, column: Any, *args: Any, **kw: Any) -> None:
        if column.name not in columns(table_name):
            add_column(table_name, column, *args, **kw)

    def guarded_create_index(index: Any, **kw: Any) -> None:
        names = {i["name"] for i in inspect(connection).get_indexes(index.table.name)}
        if index.name not in names:
            create_index(index, **kw)

    impl.create_table = guarded_create_table
    impl.add_column = guarded_add_column
    impl.create_index = guarded_create_index


def missing_from_head(engine: Engine) -> list[str]:
    """The tables, columns and indexes of the head revision the database lacks ([]: none).

    Raises:
        StorageError: the database could not be reached.
    """
    with translate_errors(), engine.connect() as connection:
        return _missing(list(revision_shapes().values())[-1], _shape_of(connection))


@functools.cache
def revision_shapes() -> dict[str, Shape]:
    """Each revision's shape, oldest first, learnt by rehearsing the migrations on an
    in-memory SQLite database (so a new revision needs no code here)."""
    script = ScriptDirectory.from_config(alembic_config())
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    rehearsal = create_engine("sqlite://")
    shapes: dict[str, Shape] = {}
    try:
        for revision in revisions:
            with rehearsal.begin() as connection:
                command.upgrade(alembic_config(connection), revision)
                shapes[revision] = _shape_of(connection)
    finally:
        rehearsal.dispose()
    return shapes


def _shape_of(connection: Connection) -> Shape:
    inspector = inspect(connection)
    names = [n for n in inspector.get_table_names() if n.startswith("magiclink_")]
    return {
        name: frozenset(c["name"] for c in inspector.get_columns(name))
        | frozenset(f"index {i['name']}" for i in inspector.get_indexes(name) if i["name"])
        for name in names
        if name != VERSION_TABLE
    }


def _missing(expected: Shape, present: Shape) -> list[str]:
    missing: list[str] = []
    for table, parts in expected.items():
        if table not in present:
            missing.append(f"table {table}")
            continue
        missing.extend(f"{table}: {part}" for part in sorted(parts - present[table]))
    return missing


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for a schema change, holding the migration lock."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        with _sqlite_write_locked(engine) as connection:
            yield connection
        return
    with engine.connect() as connection:
        if dialect in ("postgresql", "mysql", "mariadb"):
            # Read what the previous lock holder committed, whatever the engine's level.
            connection.execution_options(isolation_level="READ COMMITTED")
        if dialect == "postgresql":
            with connection.begin():
                _postgres_lock(connection)
                yield connection
        elif dialect in ("mysql", "mariadb"):
            with _mysql_named_lock(connection), connection.begin():
                yield connection
        else:
            with connection.begin():
                yield connection


def _lock_key(namespace: str) -> int:
    digest = hashlib.blake2b(f"magiclink.migrate:{namespace}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _postgres_lock(connection: Connection) -> None:
    """The transaction-scoped advisory lock of this schema (released at commit/rollback)."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})


@contextmanager
def _mysql_named_lock(connection: Connection) -> Iterator[None]:
    """`GET_LOCK` on a name of this database, released at the end (or at disconnect)."""
    database = connection.execute(text("SELECT DATABASE()")).scalar_one()
    name = f"magiclink.migrate.{_lock_key(str(database)) & 0xFFFFFFFFFFFF:x}"
    got = connection.execute(
        text("SELECT GET_LOCK(:name, :timeout)"), {"name": name, "timeout": LOCK_TIMEOUT_SECONDS}
    ).scalar()
    connection.commit()
    if got != 1:
        raise StorageError(
            f"another magiclink upgrade held the migration lock for {LOCK_TIMEOUT_SECONDS} s",
            transient=True,
        )
    try:
        yield
    finally:
        connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        connection.commit()


@contextmanager
def _sqlite_write_locked(engine: Engine) -> Iterator[Connection]:
    # pysqlite would autocommit each DDL statement; take the write lock and run every
    # statement of the migration in one real transaction instead.
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.begin()
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_SECONDS * 1000}")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            if getattr(connection.connection.dbapi_connection, "in_transaction", False):
                connection.exec_driver_sql("ROLLBACK")
            connection.rollback()
            raise
        connection.commit()


__all__ = [
    "LOCK_TIMEOUT_SECONDS",
    "VERSION_TABLE",
    "SchemaMismatch",
    "alembic_config",
    "create_schema",
    "current_revision",
    "missing_from_head",
    "revision_shapes",
    "skip_present_ddl",
    "upgrade_to",
    "upgrade_to_head",
]
