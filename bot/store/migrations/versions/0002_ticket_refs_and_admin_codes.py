"""Ticket references and one-time admin codes (issue 12).

``tickets.ref``: the random public reference card payloads carry instead of the sequential
number; every ticket made before it gets one of its own. ``admin_codes``: the hashes of the
one-time codes that register the first admins' channel.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from bot.store.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "admin_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=32), nullable=True))
    # Each old ticket its own reference, made here as the store makes them (not by SQL: the
    # database has no random source both SQLite and PostgreSQL share).
    tickets = sa.table("tickets", sa.column("number", sa.Integer), sa.column("ref", sa.String))
    bind = op.get_bind()
    numbers = bind.execute(sa.select(tickets.c.number).where(tickets.c.ref.is_(None))).scalars()
    for number in list(numbers):
        bind.execute(
            tickets.update().where(tickets.c.number == number).values(ref=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("tickets") as batch:
        batch.alter_column("ref", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint("uq_tickets_ref", ["ref"])


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("uq_tickets_ref", type_="unique")
        batch.drop_column("ref")
    op.drop_table("admin_codes")
