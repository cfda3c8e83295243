from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_postgres, fresh_sqlite
from tests.support.processes import STARTED


@pytest.fixture(autouse=True, scope="session")
def _no_process_left_running() -> Iterator[None]:
    """A test that failed half-way must not leave a proxy or stand-in running after the session."""
    yield
    for process in list(STARTED):
        process.stop(timeout_s=10)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database: every test that takes it runs on SQLite and on Postgres."""
    if request.param == "postgres":
        with fresh_postgres() as url:
            yield url
    else:
        with fresh_sqlite(tmp_path) as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url
