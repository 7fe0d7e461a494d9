"""Per-booking link generations: every booking event is fail-closed (§8.4).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

`magiclink_bookings.link_generation` is advanced by every event of a booking (cancel, no-show,
reschedule, rating, incident) in the event's own transaction; `magiclink_tokens.link_generation`
records the booking's generation when the link was issued, and verification refuses a link
whose booking has moved past it (`links_revoked`), whether or not the batch invalidation
after the event ran.

Both columns are added as NOT NULL with a server default of 0, so every existing row gets 0:
each stored token then records its booking's generation, and every link valid before the
upgrade is still valid after it (R6.1). No row is rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("magiclink_bookings", "magiclink_tokens")


def upgrade() -> None:
    """Add `link_generation` (NOT NULL, default 0) to bookings and tokens."""
    for table in _TABLES:
        op.add_column(
            table,
            sa.Column("link_generation", sa.Integer(), nullable=False, server_default="0"),
        )


def downgrade() -> None:
    """Drop both `link_generation` columns (tables rebuilt on SQLite)."""
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("link_generation")


__all__ = ["downgrade", "upgrade"]
