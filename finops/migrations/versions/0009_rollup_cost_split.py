"""rollups: prompt and completion cost apart (for FOCUS charge kinds)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

Rows rolled up before this revision get zero parts; every hour they cover is marked dirty, so the next
rollup run recomputes it from the ledger with its parts (and exports read such hours from the ledger
until then). token_cost_nusd stays: it is the sum of the two parts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prompt_cost_nusd", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
        batch_op.add_column(
            sa.Column("completion_cost_nusd", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )
    op.execute(
        "INSERT INTO rollup_dirty_hours (hour) SELECT DISTINCT hour FROM usage_rollups "
        "WHERE hour NOT IN (SELECT hour FROM rollup_dirty_hours)"
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_rollups", schema=None) as batch_op:
        batch_op.drop_column("completion_cost_nusd")
        batch_op.drop_column("prompt_cost_nusd")
