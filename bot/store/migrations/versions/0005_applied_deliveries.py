"""A conversation remembers the deliveries its turns were run for (issue 12): ``applied`` holds
the ids of the last few platform deliveries whose turn was saved, and the replies of the last,
in the same row as the state. A delivery a dead process ran and did not mark done is then not
run again on the state it moved on; its replies are sent again instead.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("applied", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("applied")
