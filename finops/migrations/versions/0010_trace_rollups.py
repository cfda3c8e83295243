"""traces: hourly rollup of closed traces for the Amplification page; trace_costs by cost

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

``trace_rollups`` holds, per hour of the first call (UTC), team, feature and factor bin, the count of
closed traces and the sums of their totals and breakdown parts; the traces job keeps it up to date from
now on, and this revision fills it from the traces already closed. The factor bins here are
``finops.traces.rollup.FACTOR_BIN_EDGES`` as of this revision (an edge belongs to the bin above it;
bin 7 is the traces with no factor).

``ix_trace_costs_total_cost_nusd`` serves the costliest traces of a period (ORDER BY total_cost_nusd
DESC, trace_id LIMIT n) without sorting every trace of the period.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PARTS = ("baseline", "context_expansion", "retries", "tool_steps", "safety", "retrieval", "other")
SUMMED = (
    "calls",
    "retries",
    "total_tokens",
    "total_cost_nusd",
    *(f"{part}_tokens" for part in PARTS),
    *(f"{part}_cost_nusd" for part in PARTS),
)
EDGES = ("1.5", "2", "3", "5", "10", "20")


def _backfill_sql(dialect: str) -> str:
    if dialect == "postgresql":
        hour = "date_trunc('hour', first_call_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    else:
        # SQLite holds UTC times as naive 'YYYY-MM-DD HH:MM:SS.ffffff' text; the hour in the same form.
        hour = "strftime('%Y-%m-%d %H:00:00.000000', first_call_at)"
    whens = " ".join(f"WHEN amplification_tokens < {edge} THEN {index}" for index, edge in enumerate(EDGES))
    factor_bin = f"CASE WHEN amplification_tokens IS NULL THEN {len(EDGES) + 1} {whens} ELSE {len(EDGES)} END"
    columns = ", ".join(SUMMED)
    sums = ", ".join(f"sum({name})" for name in SUMMED)
    return (
        f"INSERT INTO trace_rollups (hour, team, feature, factor_bin, traces, {columns}) "
        f"SELECT hour, team, feature, factor_bin, count(*), {sums} FROM ("
        f"SELECT {hour} AS hour, {factor_bin} AS factor_bin, team, feature, {columns} FROM trace_costs"
        ") AS t GROUP BY hour, team, feature, factor_bin"
    )


def upgrade() -> None:
    op.create_table(
        "trace_rollups",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("factor_bin", sa.Integer(), nullable=False),
        sa.Column("traces", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMMED),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_rollups")),
        sa.UniqueConstraint(
            "hour",
            "team",
            "feature",
            "factor_bin",
            name=op.f("uq_trace_rollups_hour_team_feature_factor_bin"),
        ),
    )
    bind = op.get_bind()
    # Straight to the driver: text() would read the ":00" of the SQLite hour format as a parameter.
    bind.exec_driver_sql(_backfill_sql(bind.dialect.name))
    op.create_index(
        "ix_trace_costs_total_cost_nusd", "trace_costs", [sa.text("total_cost_nusd DESC"), "trace_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_trace_costs_total_cost_nusd", table_name="trace_costs")
    op.drop_table("trace_rollups")
