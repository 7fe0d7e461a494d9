"""Audit entries, ratings and incidents carry the operation that wrote them (issue 12.2).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`magiclink_audit_log.operation_id` is a key unique to one service call (32 hex digits), set on
the entries that call writes; after a commit whose outcome is unknown the call looks its own
entries up by it (`AuditLog.by_operation`, one indexed SELECT) instead of guessing from times.
`magiclink_ratings.operation_id` and `magiclink_incidents.operation_id` do the same for a
rating and an incident, found again through their booking (id or uid). The columns are
nullable and added without a default: existing rows keep NULL, nothing is rewritten, and
entries written by hosts through `log_access` have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLE = "magiclink_audit_log"
_INDEX = "ix_magiclink_audit_log_operation_id"
_ROWS = ("magiclink_ratings", "magiclink_incidents")


def upgrade() -> None:
    """Add the nullable `operation_id` columns (indexed on the audit log)."""
    op.add_column(_TABLE, sa.Column("operation_id", sa.String(32), nullable=True))
    op.create_index(_INDEX, _TABLE, ["operation_id"])
    for table in _ROWS:
        op.add_column(table, sa.Column("operation_id", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop the index and the columns (the tables are rebuilt on SQLite)."""
    for table in reversed(_ROWS):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("operation_id")
    op.drop_index(_INDEX, table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("operation_id")


__all__ = ["downgrade", "upgrade"]
