"""dashboards: trace_costs by time alone

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

Dashboard users live in finops.yaml (``dashboard.users``), not in the database, so this revision only
adds what the dashboards' reads need: an index on ``trace_costs.first_call_at``, for the amplification
page and the trace picker over a period with no team or feature filter (the existing indexes lead with
feature or team, so such a read scanned the whole table).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trace_costs", schema=None) as batch_op:
        batch_op.create_index("ix_trace_costs_first_call_at", ["first_call_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trace_costs", schema=None) as batch_op:
        batch_op.drop_index("ix_trace_costs_first_call_at")
