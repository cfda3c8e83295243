"""Migration 0009: rollups gain prompt and completion cost; hours rolled up before it are redone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from finops.db import make_engine
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.migrate import downgrade, upgrade
from tests.support.databases import fresh_postgres, fresh_sqlite
from tests.support.records import make_record

HOUR = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_old_rollups_are_marked_for_recompute_and_get_their_split(kind, tmp_path):
    context = fresh_postgres(migrate=False) if kind == "postgres" else fresh_sqlite(tmp_path, migrate=False)
    with context as url:
        upgrade(url, "0008")
        old = create_engine(url)
        with old.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO usage_rollups (hour, team, feature, model, backend, calls, errors,"
                    " prompt_tokens, completion_tokens, token_cost_nusd, gpu_seconds, gpu_cost_nusd,"
                    " idle_gpu_seconds, idle_cost_nusd) VALUES (:hour, 'search', 'autocomplete', 'llama-8b',"
                    " 'gpu-a', 1, 0, 100, 20, 14000, 0, 0, 0, 0)"
                ),
                # As each database stores a UTC time (SQLite: naive text, as finops.db writes it).
                {"hour": HOUR if kind == "postgres" else "2026-11-30 12:00:00.000000"},
            )
        old.dispose()
        upgrade(url)
        engine = make_engine(url)
        insert_records(engine, [make_record(started_at=HOUR.replace(minute=5))])
        with engine.connect() as conn:
            split = conn.execute(
                text("SELECT prompt_cost_nusd, completion_cost_nusd FROM usage_rollups")
            ).one()
            assert tuple(split) == (0, 0)
            assert conn.execute(text("SELECT count(*) FROM rollup_dirty_hours")).scalar_one() == 1
        from finops.config import FinopsConfig

        run_job(engine, FinopsConfig(database_url=url), "rollups")
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT prompt_cost_nusd, completion_cost_nusd, token_cost_nusd FROM usage_rollups")
            ).one()
            assert tuple(row) == (10_000, 4_000, 14_000)
        engine.dispose()
        downgrade(url, "0008")
        upgrade(url)
