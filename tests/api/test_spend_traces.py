"""Spend and traces through the API add up to the ledgers' own rows, to the nano-dollar."""

from __future__ import annotations

from collections import defaultdict

import pytest
from sqlalchemy import func, select

from finops.attribution.models import GpuLedgerRow
from finops.db import unit_of_work
from tests.api.support import Api


def gpu_totals(api: Api) -> tuple[int, int]:
    """(busy, idle) GPU cost of the gpu_ledger, summed straight from its rows."""
    with unit_of_work(api.engine) as session:
        rows = session.execute(
            select(GpuLedgerRow.request_id.is_(None), func.sum(GpuLedgerRow.cost_nusd)).group_by(
                GpuLedgerRow.request_id.is_(None)
            )
        ).all()
    by_kind = {bool(idle): int(total) for idle, total in rows}
    return by_kind.get(False, 0), by_kind.get(True, 0)


@pytest.mark.parametrize("by", ["team", "feature", "model", "backend"])
def test_token_spend_matches_the_ledger(api: Api, by: str):
    body = api.get("/spend", "finance", by=by, basis="tokens", **api.period).json()
    expected: dict[str, int] = defaultdict(int)
    for call in api.calls:
        expected[getattr(call, by)] += call.cost_nusd
    got = {line["group"]: line["cost_nusd"] for line in body["items"] if line["calls"]}
    assert got == dict(expected)
    assert body["total_cost_nusd"] == sum(c.cost_nusd for c in api.calls)
    assert body["basis"] == "tokens" and body["by"] == by


@pytest.mark.parametrize("by", ["team", "backend"])
def test_gpu_spend_includes_idle_and_matches_the_gpu_ledger(api: Api, by: str):
    busy, idle = gpu_totals(api)
    assert busy > 0 and idle > 0
    body = api.get("/spend", "admin", by=by, basis="gpu", **api.period).json()
    assert body["total_cost_nusd"] == busy + idle
    for line in body["items"]:
        assert line["cost_nusd"] == line["gpu_cost_nusd"] + line["idle_cost_nusd"]
    if by == "team":
        assert [line["group"] for line in body["items"] if line["idle_cost_nusd"]] == ["(idle)"]


def test_spend_pages_walk_every_line_once(api: Api):
    whole = api.get("/spend", "admin", by="feature", **api.period).json()
    seen, offset = [], 0
    while offset is not None:
        page = api.get("/spend", "admin", by="feature", limit=1, offset=offset, **api.period).json()
        assert len(page["items"]) <= 1
        assert page["total_cost_nusd"] == whole["total_cost_nusd"]
        seen += page["items"]
        offset = page["next_offset"]
    assert seen == whole["items"]


def test_spend_outside_the_period_is_empty(api: Api):
    body = api.get("/spend", "admin", start="2020-01-01", end="2020-02-01").json()
    assert body["items"] == [] and body["total_cost_nusd"] == 0
    assert body["start"] == "2020-01-01T00:00:00Z"


def test_top_traces_by_cost_with_breakdowns_that_add_up(api: Api):
    items = api.get("/traces/top", "finance", **api.period).json()["items"]
    costs = [t["total_cost_nusd"] for t in items]
    assert costs == sorted(costs, reverse=True)
    traces = {c.trace_id for c in api.calls}
    assert {t["trace_id"] for t in items} == traces
    for trace in items:
        calls = [c for c in api.calls if c.trace_id == trace["trace_id"]]
        assert trace["calls"] == len(calls)
        assert trace["total_cost_nusd"] == sum(c.cost_nusd for c in calls)
        assert sum(trace["breakdown_cost_nusd"].values()) == trace["total_cost_nusd"]
        assert sum(trace["breakdown_tokens"].values()) == trace["total_tokens"]
    page = api.get("/traces/top", "finance", limit=2, offset=1, **api.period).json()
    assert [t["trace_id"] for t in page["items"]] == [t["trace_id"] for t in items[1:3]]
    assert page["next_offset"] == 3


def test_one_trace_waterfall_from_its_ledger_rows(api: Api):
    body = api.get("/traces/search-rag-1", "admin").json()
    calls = sorted((c for c in api.calls if c.trace_id == "search-rag-1"), key=lambda c: c.started_at)
    waterfall = body["waterfall"]["items"]
    assert [w["request_id"] for w in waterfall] == [c.request_id for c in calls]
    assert [w["offset_us"] for w in waterfall] == [0, 3_000_000, 6_000_000]
    assert [w["stage"] for w in waterfall] == ["retrieval", "generation", "safety"]
    assert [w["category"] for w in waterfall] == ["retrieval", "generation", "safety"]
    assert all(w["duration_us"] == 2_000_000 for w in waterfall)
    trace = body["trace"]
    assert (
        trace["total_cost_nusd"] == sum(c.cost_nusd for c in calls) == sum(w["cost_nusd"] for w in waterfall)
    )
    # Each call's share of the breakdown adds up to the trace's.
    for part, tokens in trace["breakdown_tokens"].items():
        assert sum(w["breakdown_tokens"][part] for w in waterfall) == tokens
    assert trace["amplification_tokens"] is not None

    second = api.get("/traces/search-rag-1", "admin", limit=1, offset=1).json()["waterfall"]
    assert [w["request_id"] for w in second["items"]] == [calls[1].request_id]
    assert second["next_offset"] == 2


def test_unknown_trace_is_not_found(api: Api):
    response = api.get("/traces/no-such-trace", "admin")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "not_found",
        "message": "no trace 'no-such-trace'",
        "field": "trace_id",
        "details": [],
    }
