"""The engines finops makes: on Postgres every statement is planned for its own parameters."""

from __future__ import annotations

from sqlalchemy import text

from finops.db import make_engine


def test_postgres_sessions_plan_each_statement_for_its_values(pg_url):
    # A generic plan (what a prepared statement gets after five runs) turned the rollups' cut,
    # min(started_at) WHERE id >= $1, into a walk of the whole started_at index: seconds on 10M rows.
    engine = make_engine(f"{pg_url}?options=-c%20statement_timeout%3D5000")
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
            # Options already in the URL are kept.
            assert conn.scalar(text("SHOW statement_timeout")) == "5s"
    finally:
        engine.dispose()
