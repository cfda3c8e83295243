"""The backend scrape job against real HTTP servers: vLLM pages (current and deprecated names), the
stand-in's own /metrics, a server that is not vLLM, and one that is down."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.observability.models import BackendMetricsRow
from finops.observability.queries import backend_capacity, capacity_verdicts
from tests.observability.vllm_pages import CURRENT, DEPRECATED_ONLY
from tests.support.processes import free_port
from tests.support.stack import start_sim

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Pages:
    """A real HTTP server answering GET /metrics with whatever page is set, recording what was asked."""

    def __init__(self, page: str) -> None:
        self.page = page
        self.paths: list[tuple[str, str | None]] = []
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pages.paths.append((self.path, self.headers.get("authorization")))
                body = pages.page.encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[list[Pages]]:
    made: list[Pages] = []
    yield made
    for server in made:
        server.close()


def backend(name: str, url: str, **extra: object) -> dict[str, object]:
    return {"name": name, "url": url, "models": ["m"], "gpus": 2, **extra}


def test_scrape_parses_vllm_pages_into_the_table(db_url, pages):
    current, deprecated, not_vllm = Pages(CURRENT), Pages(DEPRECATED_ONLY), Pages("process_cpu_seconds 1\n")
    pages.extend([current, deprecated, not_vllm])
    config = FinopsConfig(
        database_url=db_url,
        backends=[
            # An api_base with /v1: /metrics is still read at the server's root, with the backend's key.
            backend("current", current.url + "/v1", api_key="sk-backend"),
            backend("deprecated", deprecated.url),
            backend("not-vllm", not_vllm.url),
            backend("down", f"http://127.0.0.1:{free_port()}"),
        ],
    )
    engine = make_engine(db_url)
    try:
        assert run_job(engine, config, "backend_scrape", now=T0).up == 2
        # 15 s later each counter moved: prompt +1500 (100/s), generation +300 (20/s), prefix hits 50%.
        current.page = (
            CURRENT.replace("1.2e+06", "1201500.0")
            .replace('"} 300000.0', '"} 300300.0')
            .replace('queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 60000.0',
                     'queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 61000.0')
            .replace('hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 30000.0',
                     'hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 30500.0')
        )  # fmt: skip
        run_job(engine, config, "backend_scrape", now=T0 + timedelta(seconds=15))
        assert current.paths == [("/metrics", "Bearer sk-backend")] * 2
        with unit_of_work(engine) as session:
            rows = {
                (r.backend, r.at): r
                for r in session.scalars(select(BackendMetricsRow).order_by(BackendMetricsRow.id))
            }
            points = backend_capacity(session, T0, T0 + timedelta(minutes=1))
            verdicts = capacity_verdicts(session, T0 + timedelta(seconds=20))
        first = rows[("current", T0)]
        assert (first.up, first.running, first.waiting, first.kv_cache_usage) == (True, 21.0, 4.0, 0.97)
        assert (first.prompt_tokens_total, first.generation_tokens_total) == (2_000_000.0, 500_000.0)
        assert (first.prefix_cache_queries_total, first.prefix_cache_hits_total) == (100_000.0, 40_000.0)
        old = rows[("deprecated", T0)]
        assert (old.kv_cache_usage, old.prefix_cache_queries_total, old.prefix_cache_hits_total) == (
            0.02,
            500.0,
            125.0,
        )
        bad = rows[("not-vllm", T0)]
        assert not bad.up and bad.error is not None and "no vLLM metrics" in bad.error
        down = rows[("down", T0)]
        assert not down.up and down.error is not None and "cannot reach" in down.error
        later = [p for p in points if p.backend == "current" and p.at == T0 + timedelta(seconds=15)]
        assert len(later) == 1
        point = later[0]
        assert point.prompt_tokens_per_s == 100.0 and point.generation_tokens_per_s == 20.0
        assert point.prefix_cache_hit_rate == 0.5
        assert point.tokens_per_gpu_second == 60.0
        assert verdicts["current"].startswith("memory-bound")  # a queue with one engine's cache at 97%
        assert verdicts["deprecated"].startswith("over-provisioned")
        assert verdicts["down"].startswith("unreachable: cannot reach")
    finally:
        engine.dispose()


def test_scrape_reads_the_stand_ins_metrics(tmp_path: Path, db_url):
    sim, url = start_sim(tmp_path, ("llama-8b",))
    engine = make_engine(db_url)
    try:
        chat = {"model": "llama-8b", "messages": [{"role": "user", "content": "hello there"}]}
        httpx.post(
            url + "/v1/chat/completions", json=chat, headers={"X-Sim-Cached-Tokens": "3"}
        ).raise_for_status()
        config = FinopsConfig(database_url=db_url, backends=[backend("sim", url)])
        assert run_job(engine, config, "backend_scrape").up == 1
        with unit_of_work(engine) as session:
            row = session.scalars(select(BackendMetricsRow)).one()
        assert row.up and row.running == 0.0 and row.waiting == 0.0 and row.kv_cache_usage == 0.0
        assert row.prompt_tokens_total is not None and row.prompt_tokens_total > 3
        assert row.generation_tokens_total == 16.0
        assert (row.prefix_cache_queries_total, row.prefix_cache_hits_total) == (row.prompt_tokens_total, 3.0)
    finally:
        engine.dispose()
        sim.stop()
