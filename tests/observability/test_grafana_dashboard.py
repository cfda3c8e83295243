"""The Grafana dashboard for the proxy's /metrics reads only series the proxy really serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

from finops.observability.exposition import parse_exposition
from finops.proxy.metrics import ProxyMetrics
from tests.support.records import make_record

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "finops-proxy.json"
# A PromQL word that names a series: finops_..., not a function or a label.
SERIES = re.compile(r"\b(finops_[a-z_]+)\b")


def served_series() -> set[str]:
    metrics = ProxyMetrics()
    metrics.observe(
        [
            make_record(streamed=True, ttft_ms=50.0, itl_ms=10.0, tokens_estimated=True),
            make_record(status_code=400, error_type="context_overflow"),
        ]
    )
    metrics.errors.labels("bad_request").inc()
    metrics.bind_in_flight("gpu-a", lambda: 1.0)
    return set(parse_exposition(generate_latest(metrics.registry).decode()))


def test_every_query_reads_a_served_series_and_panels_are_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    served = served_series()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    used: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(SERIES.findall(target["expr"]))
            assert names, target["expr"]
            for name in names:
                # histogram_quantile reads <name>_bucket, which the query spells out.
                assert name in served, f"{panel['title']}: {name} is not served by the proxy"
            used |= names
    # The AI-specific series are all on the dashboard.
    assert {
        "finops_time_to_first_token_seconds_bucket",
        "finops_inter_token_latency_seconds_bucket",
        "finops_request_duration_seconds_bucket",
        "finops_call_events_total",
    } <= used
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "model", "team", "feature"} <= variables
