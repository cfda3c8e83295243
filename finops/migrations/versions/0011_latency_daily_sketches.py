"""observability: daily latency sketches per team, feature, model and metric

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

``latency_daily_sketches`` holds, per UTC day, team, feature, model and metric, the merge of that day's
hourly ``latency_sketches`` (over backends); the latency rollup job keeps it from now on and this
revision fills it from the hourly sketches already stored. A sketch is stored as
``{"z": zeros, "k": [bucket keys, ascending], "c": [counts]}`` and merges by adding counts per key.
"""

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
BATCH = 1000


def _day_sql(dialect: str) -> str:
    if dialect == "postgresql":
        return "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # SQLite holds UTC times as naive 'YYYY-MM-DD HH:MM:SS.ffffff' text; the day in the same form.
    return "strftime('%Y-%m-%d 00:00:00.000000', hour)"


def _merged(rows: Iterator[Any]) -> dict[str, Any]:
    zeros = 0
    counts: dict[int, int] = {}
    for row in rows:
        stored = orjson.loads(row[5])
        zeros += stored["z"]
        for key, count in zip(stored["k"], stored["c"], strict=True):
            counts[key] = counts.get(key, 0) + count
    keys = sorted(k for k, c in counts.items() if c)
    sketch = orjson.dumps({"z": zeros, "k": keys, "c": [counts[k] for k in keys]}).decode()
    return {"calls": zeros + sum(counts.values()), "sketch": sketch}


def upgrade() -> None:
    op.create_table(
        "latency_daily_sketches",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=8), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("sketch", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_daily_sketches")),
        sa.UniqueConstraint(
            "day",
            "team",
            "feature",
            "model",
            "metric",
            name=op.f("uq_latency_daily_sketches_day_team_feature_model_metric"),
        ),
    )
    bind = op.get_bind()
    # Straight to the driver: text() would read the ":00" of the SQLite day format as a parameter. The day
    # values go back into the insert as the driver gave them, so they keep each dialect's stored form.
    # Hourly rows are streamed (there can be hundreds of thousands); the daily ones, about 24 times fewer,
    # are inserted once the read is done.
    rows = bind.exec_driver_sql(
        f"SELECT {_day_sql(bind.dialect.name)} AS day, team, feature, model, metric, sketch "
        "FROM latency_sketches ORDER BY 1, 2, 3, 4, 5",
        execution_options={"stream_results": True},
    )
    days: list[dict[str, Any]] = []
    for (day, team, feature, model, metric), group in groupby(rows, key=lambda row: tuple(row[:5])):
        days.append({"day": day, "team": team, "feature": feature, "model": model, "metric": metric})
        days[-1].update(_merged(group))
    rows.close()
    for first in range(0, len(days), BATCH):
        op.bulk_insert(_plain(), days[first : first + BATCH])


def _plain() -> sa.TableClause:
    # Untyped columns: the values are inserted as read, with no conversion of the day.
    return sa.table(
        "latency_daily_sketches",
        *(sa.column(name) for name in ("day", "team", "feature", "model", "metric", "calls", "sketch")),
    )


def downgrade() -> None:
    op.drop_table("latency_daily_sketches")
