"""Audit entries carry the operation that wrote them (issue 12.2).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

`magiclink_audit_log.operation_id` is a key unique to one service call (32 hex digits), set on
the entries that call writes; after a commit whose outcome is unknown the call looks its own
entries up by it (`AuditLog.by_operation`, one indexed SELECT) instead of guessing from times.
The column is nullable and added without a default: existing rows keep NULL, nothing is
rewritten, and entries written by hosts through `log_access` have none.
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


def upgrade() -> None:
    """Add the nullable, indexed `operation_id` column."""
    op.add_column(_TABLE, sa.Column("operation_id", sa.String(32), nullable=True))
    op.create_index(_INDEX, _TABLE, ["operation_id"])


def downgrade() -> None:
    """Drop the index and the column (the table is rebuilt on SQLite)."""
    op.drop_index(_INDEX, table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("operation_id")
