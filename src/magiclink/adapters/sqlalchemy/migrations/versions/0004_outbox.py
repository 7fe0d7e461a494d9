"""The mail outbox table (§11.2).

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02

A new table only: no existing row changes, so no live link is touched (R6.1).
"""

from __future__ import annotations

from alembic import op

from magiclink.adapters.sqlalchemy._outbox import outbox

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create `magiclink_outbox` and its due-messages index."""
    outbox.create(op.get_bind())


def downgrade() -> None:
    """Drop `magiclink_outbox`."""
    outbox.drop(op.get_bind())
