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
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, inspect

from magiclink.adapters.sqlalchemy.errors import translate_errors
from magiclink.adapters.sqlalchemy.tables import metadata

VERSION_TABLE: Final = "magiclink_alembic_version"
SCRIPT_LOCATION: Final = str(Path(__file__).with_name("migrations"))
HEAD: Final = "head"
# The revision whose schema the original plan's tables have: tokens without booking_revision.
ORIGINAL_PLAN_REVISION: Final = "0001"
# The revision at which tokens gained booking_revision (the shape `metadata` has today).
BOOKING_REVISION_REVISION: Final = "0002"


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
    """The revision matching magiclink tables created outside Alembic, or None if absent."""
    inspector = inspect(connection)
    if not inspector.has_table("magiclink_tokens"):
        return None
    columns = {column["name"] for column in inspector.get_columns("magiclink_tokens")}
    if "booking_revision" in columns:
        return BOOKING_REVISION_REVISION
    return ORIGINAL_PLAN_REVISION


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction for a schema change, committed at the end."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    # pysqlite would autocommit each DDL statement; take the write lock and run every
    # statement of the migration in one real transaction instead.
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.begin()
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
    "VERSION_TABLE",
    "alembic_config",
    "create_schema",
    "current_revision",
    "upgrade_to",
    "upgrade_to_head",
]
