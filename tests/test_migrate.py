"""`finops migrate`: creates what is missing, runs every migration, and can be run again."""

from __future__ import annotations

import subprocess
import sys
import uuid

from sqlalchemy import create_engine, inspect, text

from tests.support.databases import PG_ADMIN_URL, pg_url_for

TABLES = {"token_ledger", "price_book", "api_keys", "gpu_ledger", "usage_rollups", "job_state", "trace_costs"}


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finops.cli", "migrate"],
        capture_output=True,
        text=True,
        env={"FINOPS_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_migrate_creates_a_missing_postgres_database_and_is_idempotent():
    name = f"finops_test_{uuid.uuid4().hex[:12]}"
    url = pg_url_for(name)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(2):
            result = migrate(url)
            assert result.returncode == 0, result.stderr
            assert "database migrated to head" in result.stdout
        engine = create_engine(url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrate_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert migrate(url).returncode == 0
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_unreachable_database_is_a_clear_error():
    result = migrate("postgresql+psycopg://postgres@127.0.0.1:1/finops")
    assert result.returncode == 1
    assert "database error" in result.stderr and "Traceback" not in result.stderr
