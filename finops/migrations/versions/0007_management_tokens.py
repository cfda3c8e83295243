"""management API tokens

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "management_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'finance', 'team')", name=op.f("ck_management_tokens_role")),
        sa.CheckConstraint(
            "(role = 'team' AND team IS NOT NULL) OR (role <> 'team' AND team IS NULL)",
            name=op.f("ck_management_tokens_team"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_management_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_management_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("management_tokens")
