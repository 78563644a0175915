"""A conversation remembers whose turn was saved last (issue 11): ``user_key`` names that person
("platform:user_id"), so that reading the row joins their profile and a turn of the same person
reads its conversation and its profile in one statement rather than two.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("user_key", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("user_key")
