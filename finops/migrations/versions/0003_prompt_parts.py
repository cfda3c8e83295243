"""token ledger: how each chat prompt divides into system, history, context and user parts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTS = ("prompt_system_tokens", "prompt_history_tokens", "prompt_context_tokens", "prompt_user_tokens")


def upgrade() -> None:
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        for column in PARTS:
            batch_op.add_column(sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        for column in reversed(PARTS):
            batch_op.drop_column(column)
