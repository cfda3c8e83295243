"""observability: latency sketches, call events, backend metrics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TAGS = ("hour", "team", "feature", "model", "backend")


def _tag_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("backend", sa.String(length=128), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "latency_sketches",
        *_tag_columns(),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("sketch", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_sketches")),
        sa.UniqueConstraint(
            *_TAGS, "metric", name=op.f("uq_latency_sketches_hour_team_feature_model_backend_metric")
        ),
    )
    op.create_index("ix_latency_sketches_model_hour", "latency_sketches", ["model", "hour"])

    op.create_table(
        "call_events",
        *_tag_columns(),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint(
            *_TAGS, "event", name=op.f("uq_call_events_hour_team_feature_model_backend_event")
        ),
    )

    op.create_table(
        "backend_metrics",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("backend", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("up", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.Column("gpus", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("running", sa.Float(precision=53), nullable=True),
        sa.Column("waiting", sa.Float(precision=53), nullable=True),
        sa.Column("kv_cache_usage", sa.Float(precision=53), nullable=True),
        sa.Column("prompt_tokens_total", sa.Float(precision=53), nullable=True),
        sa.Column("generation_tokens_total", sa.Float(precision=53), nullable=True),
        sa.Column("prefix_cache_queries_total", sa.Float(precision=53), nullable=True),
        sa.Column("prefix_cache_hits_total", sa.Float(precision=53), nullable=True),
        sa.Column("prefix_cache_hit_rate", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backend_metrics")),
    )
    op.create_index("ix_backend_metrics_backend_at", "backend_metrics", ["backend", "at"])
    op.create_index("ix_backend_metrics_at", "backend_metrics", ["at"])

    op.create_table(
        "latency_incidents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("group_by", sa.String(length=16), nullable=False),
        sa.Column("group_value", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("percentile", sa.Float(precision=53), nullable=False),
        sa.Column("factor", sa.Float(precision=53), nullable=False),
        sa.Column("baseline_kind", sa.String(length=16), nullable=False),
        sa.Column("baseline_ms", sa.Float(precision=53), nullable=False),
        sa.Column("threshold_ms", sa.Float(precision=53), nullable=False),
        sa.Column("observed_ms", sa.Float(precision=53), nullable=False),
        sa.Column("peak_ms", sa.Float(precision=53), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_observed_ms", sa.Float(precision=53), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_incidents")),
    )
    op.create_index(
        "ix_latency_incidents_rule_group", "latency_incidents", ["rule", "group_value", "resolved_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_latency_incidents_rule_group", table_name="latency_incidents")
    op.drop_table("latency_incidents")
    op.drop_index("ix_backend_metrics_at", table_name="backend_metrics")
    op.drop_index("ix_backend_metrics_backend_at", table_name="backend_metrics")
    op.drop_table("backend_metrics")
    op.drop_table("call_events")
    op.drop_index("ix_latency_sketches_model_hour", table_name="latency_sketches")
    op.drop_table("latency_sketches")
