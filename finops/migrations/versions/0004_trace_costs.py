"""trace costs: closed traces with amplification and breakdown; traces still open

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trace_costs",
        sa.Column("trace_id", sa.String(length=128), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("first_call_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_call_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("total_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("amplification_tokens", sa.Numeric(precision=24, scale=6), nullable=True),
        sa.Column("amplification_cost", sa.Numeric(precision=24, scale=6), nullable=True),
        sa.Column("baseline_source", sa.String(length=16), nullable=False),
        sa.Column("baseline_tokens", sa.BigInteger(), nullable=False),
        sa.Column("context_expansion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("retries_tokens", sa.BigInteger(), nullable=False),
        sa.Column("tool_steps_tokens", sa.BigInteger(), nullable=False),
        sa.Column("safety_tokens", sa.BigInteger(), nullable=False),
        sa.Column("retrieval_tokens", sa.BigInteger(), nullable=False),
        sa.Column("other_tokens", sa.BigInteger(), nullable=False),
        sa.Column("baseline_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("context_expansion_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("retries_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("tool_steps_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("safety_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("retrieval_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("other_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_trace_costs")),
    )
    with op.batch_alter_table("trace_costs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_trace_costs_feature_first_call_at", ["feature", "first_call_at"], unique=False
        )
        batch_op.create_index("ix_trace_costs_team_first_call_at", ["team", "first_call_at"], unique=False)

    op.create_table(
        "trace_pending",
        sa.Column("trace_id", sa.String(length=128), nullable=False),
        sa.Column("last_call_ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_trace_pending")),
    )


def downgrade() -> None:
    op.drop_table("trace_pending")
    with op.batch_alter_table("trace_costs", schema=None) as batch_op:
        batch_op.drop_index("ix_trace_costs_team_first_call_at")
        batch_op.drop_index("ix_trace_costs_feature_first_call_at")

    op.drop_table("trace_costs")
