"""Reconciliation on real traffic: loadgen -> proxy -> stand-in -> ledger -> jobs -> exports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from finops.config import load_config
from finops.db import unit_of_work
from finops.exports.service import ExportRequest, iter_export
from finops.jobs.registry import run_job
from finops.ledger.models import TokenLedgerRow
from finops.loadgen.config import LoadConfig, parse_mix
from finops.loadgen.runner import run_load
from finops.rollups.service import hour_of
from tests.exports.support import gpu_ledger_nusd, parse, token_ledger_nusd, total, usd
from tests.support.stack import ProxyStack, backend, start_sim


@pytest.fixture
def stack(tmp_path: Path, pg_url: str) -> Iterator[ProxyStack]:
    sim, sim_url = start_sim(tmp_path, ("llama-8b", "qwen-1b"), "--ttft-ms", "5")
    proxy = ProxyStack(
        tmp_path,
        pg_url,
        [
            backend("a", sim_url, ("llama-8b",)),
            backend("b", sim_url, ("qwen-1b",), gpus=2, usd_per_gpu_hour="3.7"),
        ],
        attribution={"window_s": 10, "close_delay_s": 0},
    )
    try:
        yield proxy.start()
    finally:
        proxy.close()
        sim.stop()


def test_exports_of_a_loadgen_run_add_up_to_the_ledgers(stack: ProxyStack):
    load = LoadConfig(
        proxy_url=stack.url,
        mix=parse_mix("chat,rag,multiturn,agent,safety"),
        queries=30,
        rps=0,
        concurrency=8,
        seed=7,
        retry_rate=0.1,
        failure_rate=0.05,
        run_id="exports",
    )
    ids = {c["request_id"] for c in run_load(load).to_json()["calls"]}
    assert len(ids) > 60
    stack.wait_rows(lambda rows: ids <= {r["request_id"] for r in rows}, timeout_s=20)
    config = load_config(stack.config_path)
    engine = stack.engine
    with unit_of_work(engine) as session:
        first, last, count = session.execute(
            select(func.min(TokenLedgerRow.started_at), func.max(TokenLedgerRow.started_at), func.count())
        ).one()
        teams = sorted(session.scalars(select(TokenLedgerRow.team).distinct()))
    now = datetime.now(UTC) + timedelta(minutes=1)
    run_job(engine, config, "attribution", now=now)
    run_job(engine, config, "rollups")
    start, end = hour_of(first), hour_of(now) + timedelta(hours=1)
    assert end > last

    def export(req: ExportRequest) -> list[dict[str, str]]:
        with unit_of_work(engine) as session:
            return parse(b"".join(iter_export(session, config, req)))

    tokens = export(ExportRequest("focus", start, end))
    gpu = export(ExportRequest("focus", start, end, basis="gpu"))
    assert token_ledger_nusd(engine, start, end) > 0 and gpu_ledger_nusd(engine, start, end) > 0
    assert total(tokens, "BilledCost") == usd(token_ledger_nusd(engine, start, end))
    assert total(gpu, "BilledCost") == usd(gpu_ledger_nusd(engine, start, end))
    assert {"input-tokens", "output-tokens", "gpu-time", "idle-gpu-time"} <= {r["x_ChargeKind"] for r in gpu}
    for team in teams:
        by_team = export(ExportRequest("focus", start, end, team=team, basis="gpu"))
        assert total(by_team, "BilledCost") == usd(gpu_ledger_nusd(engine, start, end, team=team))
        assert total(by_team, "x_TokenCost") == usd(token_ledger_nusd(engine, start, end, team=team))

    calls = export(ExportRequest("ledger", start, end))
    assert len(calls) == count == len(ids)
    assert total(calls, "cost_usd") == usd(token_ledger_nusd(engine, start, end))
    busy = [r for r in gpu if r["x_ChargeKind"] == "gpu-time"]
    assert total(calls, "gpu_cost_usd") == total(busy, "BilledCost")
