"""gpu ledger, usage rollups, job state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# BIGINT on Postgres; INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gpu_ledger",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=128), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("feature", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=256), nullable=True),
        sa.Column("gpu_seconds", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("cost_nusd", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_ledger")),
    )
    with op.batch_alter_table("gpu_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_gpu_ledger_backend_window_start", ["backend", "window_start"], unique=False)
        batch_op.create_index("ix_gpu_ledger_request_id", ["request_id"], unique=False)
        batch_op.create_index("ix_gpu_ledger_window_start", ["window_start"], unique=False)

    op.create_table(
        "job_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_state")),
    )
    op.create_table(
        "rollup_dirty_hours",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hour", name=op.f("pk_rollup_dirty_hours")),
    )
    op.create_table(
        "usage_rollups",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("backend", sa.String(length=128), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("token_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("gpu_seconds", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("gpu_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("idle_gpu_seconds", sa.Numeric(precision=20, scale=6), nullable=False),
        sa.Column("idle_cost_nusd", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_rollups")),
        sa.UniqueConstraint(
            "hour",
            "team",
            "feature",
            "model",
            "backend",
            name=op.f("uq_usage_rollups_hour_team_feature_model_backend"),
        ),
    )


def downgrade() -> None:
    op.drop_table("usage_rollups")
    op.drop_table("rollup_dirty_hours")
    op.drop_table("job_state")
    with op.batch_alter_table("gpu_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_gpu_ledger_window_start")
        batch_op.drop_index("ix_gpu_ledger_request_id")
        batch_op.drop_index("ix_gpu_ledger_backend_window_start")

    op.drop_table("gpu_ledger")
