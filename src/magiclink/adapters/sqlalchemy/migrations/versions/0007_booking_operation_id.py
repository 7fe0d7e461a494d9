"""Bookings carry the operation that last wrote them (issue 12.2).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

`magiclink_bookings.operation_id` is the key (32 hex digits) of the service call that last
added or changed the row: booking, cancelling, marking a no-show or complete, rescheduling.
After a commit whose outcome is unknown the call reads the booking again by its id (or uid)
and knows its own write landed exactly when the row carries its key, instead of guessing
from the booking's status or times (another caller may have made the same change). The
column is nullable and added without a default: existing rows keep NULL, nothing is
rewritten, and no link changes (R6.1).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLE = "magiclink_bookings"


def upgrade() -> None:
    """Add the nullable `operation_id` column to bookings."""
    op.add_column(_TABLE, sa.Column("operation_id", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop the column (the table is rebuilt on SQLite)."""
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("operation_id")


__all__ = ["downgrade", "upgrade"]
