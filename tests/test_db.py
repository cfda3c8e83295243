"""The engines finops makes: on Postgres no statement is prepared, so each run is planned for its values."""

from __future__ import annotations

from sqlalchemy import select, text

from finops.db import make_engine
from finops.ledger.models import TokenLedgerRow


def test_postgres_statements_are_never_prepared(pg_url):
    # A prepared statement (psycopg prepares on the fifth run) may get a generic plan: the rollups' cut,
    # min(started_at) WHERE id >= $1, then walked the whole started_at index, seconds on 10M rows.
    engine = make_engine(f"{pg_url}?application_name=finops-test")
    try:
        with engine.connect() as conn:
            for watermark in range(10):
                conn.execute(select(TokenLedgerRow.started_at).where(TokenLedgerRow.id >= watermark))
            assert conn.scalar(text("SELECT count(*) FROM pg_prepared_statements")) == 0
            # Parameters of the URL are kept.
            assert conn.scalar(text("SHOW application_name")) == "finops-test"
    finally:
        engine.dispose()


def test_the_default_prepare_threshold_would_prepare(pg_url):
    """The check above can fail: with psycopg's default the same loop leaves a prepared statement."""
    engine = make_engine(pg_url, connect_args={"prepare_threshold": 5})
    try:
        with engine.connect() as conn:
            for watermark in range(10):
                conn.execute(select(TokenLedgerRow.started_at).where(TokenLedgerRow.id >= watermark))
            assert conn.scalar(text("SELECT count(*) FROM pg_prepared_statements")) >= 1
    finally:
        engine.dispose()
