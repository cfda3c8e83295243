"""initial schema: token ledger, price book, api keys

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# BIGINT on Postgres; INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("default_feature", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "finops_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_finops_settings")),
    )
    op.create_table(
        "price_book",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input_usd_per_mtok", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("cached_input_usd_per_mtok", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.Column("output_usd_per_mtok", sa.Numeric(precision=24, scale=12), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_book")),
        sa.UniqueConstraint("model", "effective_from", name=op.f("uq_price_book_model_effective_from")),
    )
    op.create_table(
        "token_ledger",
        sa.Column("id", BIGINT_PK, autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("trace_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team", sa.String(length=128), nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("requested_model", sa.String(length=256), nullable=False),
        sa.Column("backend", sa.String(length=128), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("streamed", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("tokens_estimated", sa.Boolean(), nullable=False),
        sa.Column("ttft_ms", sa.Float(precision=53), nullable=True),
        sa.Column("itl_ms", sa.Float(precision=53), nullable=True),
        sa.Column("latency_ms", sa.Float(precision=53), nullable=False),
        sa.Column("prompt_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("completion_cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("cost_nusd", sa.BigInteger(), nullable=False),
        sa.Column("priced", sa.Boolean(), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("finish_reason", sa.String(length=32), nullable=True),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("client_disconnected", sa.Boolean(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("retry_of", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_ledger")),
        sa.UniqueConstraint("request_id", name=op.f("uq_token_ledger_request_id")),
    )
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_token_ledger_backend_started_at", ["backend", "started_at"], unique=False)
        batch_op.create_index("ix_token_ledger_started_at", ["started_at"], unique=False)
        batch_op.create_index("ix_token_ledger_team_started_at", ["team", "started_at"], unique=False)
        batch_op.create_index("ix_token_ledger_trace_id", ["trace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("token_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_token_ledger_trace_id")
        batch_op.drop_index("ix_token_ledger_team_started_at")
        batch_op.drop_index("ix_token_ledger_started_at")
        batch_op.drop_index("ix_token_ledger_backend_started_at")

    op.drop_table("token_ledger")
    op.drop_table("price_book")
    op.drop_table("finops_settings")
    op.drop_table("api_keys")
