"""The outbox's lanes (issue 12): ``ticket_jobs`` also holds a turn's replies that could not be
sent within the turn. A job's order is kept per lane ("ticket:<number>" or
"conversation:<conversation key>") and target, and a reply has no ticket.

Every job made before this belongs to its ticket's lane.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_jobs") as batch:
        batch.add_column(sa.Column("lane", sa.String(), nullable=True))
    jobs = sa.table("ticket_jobs", sa.column("ticket_number", sa.Integer), sa.column("lane"))
    op.execute(
        jobs.update().values(lane=sa.literal("ticket:") + sa.cast(jobs.c.ticket_number, sa.String))
    )
    with op.batch_alter_table("ticket_jobs") as batch:
        batch.alter_column("lane", existing_type=sa.String(), nullable=False)
        batch.alter_column("ticket_number", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint("uq_ticket_jobs_order", type_="unique")
        batch.create_unique_constraint("uq_ticket_jobs_order", ["lane", "target", "seq"])
        batch.create_index("ix_ticket_jobs_ticket_number", ["ticket_number"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM ticket_jobs WHERE ticket_number IS NULL")  # replies: no ticket
    with op.batch_alter_table("ticket_jobs") as batch:
        batch.drop_index("ix_ticket_jobs_ticket_number")
        batch.drop_constraint("uq_ticket_jobs_order", type_="unique")
        batch.create_unique_constraint("uq_ticket_jobs_order", ["ticket_number", "target", "seq"])
        batch.alter_column("ticket_number", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("lane")
