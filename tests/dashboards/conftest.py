from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dashboards.support import fill_from_loadgen, running_dashboard
from tests.support.databases import fresh_postgres


@dataclass(frozen=True)
class Stack:
    db_url: str
    config_path: Path
    base_url: str
    tmp: Path


@pytest.fixture(scope="session")
def loadgen_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Postgres filled by a loadgen run through a real proxy and the real jobs, and a running
    `finops dashboard` on it; shared by the access and browser tests (it takes a while to build)."""
    tmp = tmp_path_factory.mktemp("dashboard-stack")
    with fresh_postgres() as db_url:
        config_path = fill_from_loadgen(tmp, db_url)
        with running_dashboard(tmp, config_path) as base_url:
            yield Stack(db_url, config_path, base_url, tmp)
