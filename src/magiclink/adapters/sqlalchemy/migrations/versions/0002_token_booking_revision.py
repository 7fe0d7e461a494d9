"""Bind tokens to the booking revision they were issued for (R6.6).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02

The new column is nullable (a NULL revision skips the revision check), and it is filled from
each booking's *current* revision, so every token that was valid before the upgrade is still
valid after it (R6.1): upgrading never invalidates a live link. Tokens whose booking no longer
exists keep NULL; verification already refuses them as "booking_missing".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_tokens = sa.table(
    "magiclink_tokens", sa.column("booking_id", sa.BigInteger), sa.column("booking_revision")
)
_bookings = sa.table(
    "magiclink_bookings", sa.column("id", sa.BigInteger), sa.column("revision", sa.Integer)
)


def upgrade() -> None:
    """Add `magiclink_tokens.booking_revision` and fill it from the booking's revision."""
    op.add_column("magiclink_tokens", sa.Column("booking_revision", sa.Integer(), nullable=True))
    # One UPDATE with a correlated subquery, whatever the number of tokens.
    op.execute(
        _tokens.update()
        .where(_tokens.c.booking_id.is_not(None))
        .values(
            booking_revision=sa.select(_bookings.c.revision)
            .where(_bookings.c.id == _tokens.c.booking_id)
            .scalar_subquery()
        )
    )


def downgrade() -> None:
    """Drop `magiclink_tokens.booking_revision` (table rebuilt on SQLite)."""
    with op.batch_alter_table("magiclink_tokens") as batch:
        batch.drop_column("booking_revision")


__all__ = ["downgrade", "upgrade"]
