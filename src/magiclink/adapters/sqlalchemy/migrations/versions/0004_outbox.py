"""The mail outbox table (§11.2).

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02

A new table only: no existing row changes, so no live link is touched (R6.1). Its shape is
spelled out here, not imported from the adapter: a migration is a snapshot of the schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    """Create `magiclink_outbox` and its due-messages index."""
    op.create_table(
        "magiclink_outbox",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("booking_revision", sa.Integer(), nullable=False),
        sa.Column("guest_email", sa.String(254), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _time(), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("delivered_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_outbox"),
        **_MYSQL,
    )
    op.create_index(
        "ix_magiclink_outbox_state_due", "magiclink_outbox", ["state", "next_attempt_at"]
    )


def downgrade() -> None:
    """Drop `magiclink_outbox`."""
    op.drop_index("ix_magiclink_outbox_state_due", table_name="magiclink_outbox")
    op.drop_table("magiclink_outbox")


__all__ = ["downgrade", "upgrade"]
