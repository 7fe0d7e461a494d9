"""Alembic environment of the magiclink tables, driven programmatically.

`magiclink.adapters.sqlalchemy._migrate` builds the Alembic `Config` in code and hands over an
open connection in `config.attributes["connection"]`; there is no alembic.ini. The revision
table is `magiclink_alembic_version`, so it never collides with a host's own Alembic history.
"""

from __future__ import annotations

from alembic import context

from magiclink.adapters.sqlalchemy._migrate import VERSION_TABLE, skip_present_ddl
from magiclink.adapters.sqlalchemy._tables import metadata


def run_offline() -> None:
    """Render the migration as SQL for the dialect named in the config (no connection)."""
    context.configure(
        dialect_name=context.config.get_main_option("dialect_name") or "postgresql",
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migration on the connection given by `migrate.py`."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "magiclink migrations run through magiclink.adapters.sqlalchemy.upgrade_to_head"
            "(engine) (or the `magiclink` command line), which supplies the connection"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        compare_type=True,
    )
    # A revision cut short on MariaDB (DDL commits) is completed by running it again.
    skip_present_ddl(context.get_context().impl, connection)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

__all__ = ["run_offline", "run_online"]
