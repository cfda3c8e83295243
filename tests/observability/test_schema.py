"""Migration 0006 creates exactly what the ORM models of finops.observability describe, and downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import finops.models  # noqa: F401  (every model, so that metadata is whole)
from finops.db import Base, make_engine
from finops.migrate import downgrade, upgrade
from finops.observability import models

OURS = {
    models.LatencySketchRow.__tablename__,
    models.CallEventRow.__tablename__,
    models.BackendMetricsRow.__tablename__,
    models.LatencyIncidentRow.__tablename__,
}


def test_migration_matches_the_models(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= OURS
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        ours = [d for d in diffs if any(table in repr(d) for table in OURS)]
        assert ours == []
    finally:
        engine.dispose()


def test_downgrade_removes_the_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'down.db'}"
    upgrade(url)
    downgrade(url, "0005")
    engine = make_engine(url)
    try:
        assert not OURS & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
