"""Kept events (issue 12): a Slack delivery kept before it is acknowledged, until its work is
done, so that a process killed after the acknowledgement loses nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.store.schema import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "kept_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("delivery_key", sa.String(), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("kept_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_until", UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("kept_events", schema=None) as batch_op:
        batch_op.create_index("ix_kept_events_done_at", ["done_at"], unique=False)
        batch_op.create_index(
            "ix_kept_events_pending",
            ["lease_until"],
            unique=False,
            sqlite_where=sa.text("done_at IS NULL"),
            postgresql_where=sa.text("done_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("kept_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_kept_events_pending",
            sqlite_where=sa.text("done_at IS NULL"),
            postgresql_where=sa.text("done_at IS NULL"),
        )
        batch_op.drop_index("ix_kept_events_done_at")

    op.drop_table("kept_events")
