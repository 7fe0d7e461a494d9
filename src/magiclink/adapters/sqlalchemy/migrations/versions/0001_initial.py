"""The original plan's tables (tokens without `booking_revision`).

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from `tables.py`: a migration is a snapshot
and must not change when the current model does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

__all__ = [
    "branch_labels",
    "depends_on",
    "down_revision",
    "downgrade",
    "revision",
    "upgrade",
]


# utf8mb4 compared byte for byte on MySQL/MariaDB (see tables.py): "josé" is not "jose".
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _id() -> sa.types.TypeEngine[int]:
    # INTEGER PRIMARY KEY is SQLite's autoincrementing rowid alias; BIGINT elsewhere.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.types.TypeEngine[datetime]:
    # Microseconds on MariaDB/MySQL need DATETIME(6); stored as naive UTC there and on SQLite.
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _create_guests() -> None:
    """`magiclink_guests`: one row per normalized e-mail."""
    op.create_table(
        "magiclink_guests",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("normalized_email", sa.String(254), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("last_request_at", _time(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_guests"),
        sa.UniqueConstraint("normalized_email", name="uq_magiclink_guests_normalized_email"),
        **_MYSQL,
    )


def _create_bookings() -> None:
    """`magiclink_bookings`, unique by `uid`."""
    op.create_table(
        "magiclink_bookings",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("mentor_id", sa.BigInteger(), nullable=False),
        sa.Column("guest_email", sa.String(254), nullable=False),
        sa.Column("start_time", _time(), nullable=False),
        sa.Column("end_time", _time(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_bookings"),
        sa.UniqueConstraint("uid", name="uq_magiclink_bookings_uid"),
        **_MYSQL,
    )


def _create_tokens() -> None:
    """`magiclink_tokens` (no `booking_revision` yet: 0002 adds it) and its three indexes."""
    op.create_table(
        "magiclink_tokens",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("guest_id", _id(), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", _time(), nullable=False),
        sa.Column("used_at", _time(), nullable=True),
        sa.Column("invalidated", sa.Boolean(), nullable=False),
        sa.Column("invalidation_reason", sa.String(32), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_magiclink_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["guest_id"],
            ["magiclink_guests.id"],
            name="fk_magiclink_tokens_guest_id_magiclink_guests",
        ),
        **_MYSQL,
    )
    op.create_index("ix_magiclink_tokens_booking_id", "magiclink_tokens", ["booking_id"])
    op.create_index("ix_magiclink_tokens_guest_id", "magiclink_tokens", ["guest_id"])
    op.create_index("ix_magiclink_tokens_expires_at", "magiclink_tokens", ["expires_at"])


def _create_audit_log() -> None:
    """`magiclink_audit_log` and its two indexes."""
    op.create_table(
        "magiclink_audit_log",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("guest_id", sa.BigInteger(), nullable=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("resource_id", sa.String(255), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_audit_log"),
        **_MYSQL,
    )
    op.create_index("ix_magiclink_audit_log_resource_id", "magiclink_audit_log", ["resource_id"])
    op.create_index("ix_magiclink_audit_log_guest_id", "magiclink_audit_log", ["guest_id"])


def _create_ratings() -> None:
    """`magiclink_ratings`: at most one per booking (unique `booking_id`)."""
    op.create_table(
        "magiclink_ratings",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.BigInteger(), nullable=False),
        sa.Column("student_profile_id", sa.String(255), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_ratings"),
        sa.UniqueConstraint("booking_id", name="uq_magiclink_ratings_booking_id"),
        **_MYSQL,
    )


def _create_incidents() -> None:
    """`magiclink_incidents` and its index on the booking uid."""
    op.create_table(
        "magiclink_incidents",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("booking_uid", sa.String(255), nullable=False),
        sa.Column("booking_id", sa.BigInteger(), nullable=True),
        sa.Column("student_profile_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("reported_by_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_magiclink_incidents"),
        **_MYSQL,
    )
    op.create_index("ix_magiclink_incidents_booking_uid", "magiclink_incidents", ["booking_uid"])


def upgrade() -> None:
    """Create the six magiclink tables."""
    _create_guests()
    _create_bookings()
    _create_tokens()
    _create_audit_log()
    _create_ratings()
    _create_incidents()


def downgrade() -> None:
    """Drop the six magiclink tables."""
    for table in (
        "magiclink_incidents",
        "magiclink_ratings",
        "magiclink_audit_log",
        "magiclink_tokens",
        "magiclink_bookings",
        "magiclink_guests",
    ):
        op.drop_table(table)
