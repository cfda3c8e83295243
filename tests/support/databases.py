"""Real databases for tests: a fresh Postgres database or SQLite file per test, migrated by Alembic."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from finops.migrate import upgrade

PG_ADMIN_URL = os.environ.get("FINOPS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pg_url_for(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextmanager
def fresh_postgres(migrate: bool = True) -> Iterator[str]:
    name = f"finops_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_url_for(name)
    try:
        if migrate:
            upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_sqlite(directory: Path, migrate: bool = True) -> Iterator[str]:
    url = f"sqlite:///{directory / f'finops-{uuid.uuid4().hex[:8]}.db'}"
    if migrate:
        upgrade(url)
    yield url
