"""The backend scrape job: each backend's vLLM /metrics, one ``backend_metrics`` row per backend per run.

A backend that cannot be scraped (down, not vLLM, a page that does not parse) gets a row with ``up``
false and the reason, so a gap in the capacity chart says why.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

from finops.config import BackendConfig, FinopsConfig
from finops.observability.exposition import CapacitySample, ExpositionError, capacity_sample
from finops.observability.models import BackendMetricsRow

MAX_PAGE_BYTES = 16 * 1024 * 1024
_NO_SAMPLE = dict.fromkeys(CapacitySample.__dataclass_fields__)


def metrics_url(backend: BackendConfig) -> str:
    """vLLM serves /metrics at the server's root, beside (not under) the OpenAI API's /v1."""
    root = backend.url[: -len("/v1")] if backend.url.endswith("/v1") else backend.url
    return root + "/metrics"


def fetch(backend: BackendConfig, timeout_s: float) -> CapacitySample | str:
    """The backend's capacity sample, or why there is none (a short, secret-free message)."""
    headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
    url = metrics_url(backend)
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"cannot reach {url}: {type(exc).__name__}: {exc}"[:512]
    if response.status_code != 200:
        return f"{url} answered HTTP {response.status_code}"
    if len(response.content) > MAX_PAGE_BYTES:
        return f"{url}: page larger than {MAX_PAGE_BYTES} bytes"
    try:
        return capacity_sample(response.text)
    except ExpositionError as exc:
        return f"{url}: {exc}"[:512]


@dataclass(frozen=True)
class ScrapeResult:
    backends: int
    up: int


def scrape_backends(session: Session, config: FinopsConfig, now: datetime | None = None) -> ScrapeResult:
    backends = config.backends
    if not backends:
        return ScrapeResult(0, 0)
    timeout_s = config.observability.scrape_timeout_s
    with ThreadPoolExecutor(max_workers=min(8, len(backends))) as pool:
        results = list(pool.map(lambda b: fetch(b, timeout_s), backends))
    at = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for backend, result in zip(backends, results, strict=True):
        row: dict[str, Any] = {"backend": backend.name, "at": at, "gpus": backend.gpus}
        if isinstance(result, str):
            row |= {"up": False, "error": result, **_NO_SAMPLE}
        else:
            row |= {"up": True, "error": None, **asdict(result)}
        rows.append(row)
    session.execute(insert(BackendMetricsRow), rows)
    return ScrapeResult(len(rows), sum(1 for r in rows if r["up"]))
