from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.support import Api, seeded_api


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    seeded = seeded_api(pg_url)
    try:
        with seeded.client:
            yield seeded
    finally:
        seeded.engine.dispose()
