"""A test's revision after the first release (tests/test_migrations.py copies it in): a column
added to ``tickets`` by copying the table, which the other tables refer to, and a wider column
in ``ticket_events``: what SQLite can only do in batch mode, with data in the tables.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _copy() -> str:
    """SQLite copies the table (what any ALTER but ADD COLUMN needs there); PostgreSQL alters."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("tickets", recreate=_copy()) as batch:
        batch.add_column(sa.Column("probe", sa.String(8), nullable=False, server_default="kept"))
    with op.batch_alter_table("ticket_events") as batch:
        batch.alter_column(
            "kind", type_=sa.String(64), existing_type=sa.String(32), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ticket_events") as batch:
        batch.alter_column(
            "kind", type_=sa.String(32), existing_type=sa.String(64), existing_nullable=False
        )
    with op.batch_alter_table("tickets", recreate=_copy()) as batch:
        batch.drop_column("probe")
