"""Prometheus metrics of the proxy, updated from the ledger writer's thread, off the request path."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from finops.ledger.record import UsageRecord
from finops.observability.proxy_metrics import CallEventMetrics

# Time to first token spans from tens of milliseconds to minutes under load.
TTFT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
ITL_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LABELS = ("model", "team", "feature")
# Team and feature come from clients: past this many label sets, new ones are counted under "other",
# so that a client cannot grow the proxy's memory and /metrics without bound.
MAX_LABEL_SETS = 5_000
OVERFLOW = "other"


class _Children(NamedTuple):
    prompt_tokens: Any
    completion_tokens: Any
    cost: Any
    estimated: Any
    ttft: Any
    itl: Any
    latency: Any


class ProxyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "finops_requests_total",
            "Proxied calls recorded in the ledger",
            [*LABELS, "endpoint", "status"],
            registry=r,
        )
        self.tokens = Counter("finops_tokens_total", "Tokens of proxied calls", [*LABELS, "kind"], registry=r)
        self.cost = Counter("finops_cost_usd_total", "Token cost of proxied calls in USD", LABELS, registry=r)
        self.estimated = Counter(
            "finops_estimated_usage_total",
            "Calls whose tokens were counted by the proxy (no usage from the backend)",
            LABELS,
            registry=r,
        )
        self.ttft = Histogram(
            "finops_time_to_first_token_seconds",
            "Time to first token of streamed calls",
            LABELS,
            buckets=TTFT_BUCKETS_S,
            registry=r,
        )
        self.itl = Histogram(
            "finops_inter_token_latency_seconds",
            "Mean inter-token latency of streamed calls",
            LABELS,
            buckets=ITL_BUCKETS_S,
            registry=r,
        )
        self.latency = Histogram(
            "finops_request_duration_seconds",
            "Total latency of proxied calls",
            LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.errors = Counter(
            "finops_proxy_errors_total",
            "Calls the proxy itself answered with an error (bad input, tags, keys, backends away)",
            ["code"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "finops_ledger_queue_records", "Usage records waiting for the ledger writer", registry=r
        )
        self.spooled = Gauge(
            "finops_ledger_spooled_records",
            "Usage records written to the local spool since start (database away)",
            registry=r,
        )
        self.database_up = Gauge(
            "finops_ledger_database_up", "1 while the ledger database takes writes", registry=r
        )
        self.call_events = CallEventMetrics(r)
        self._by_labels: dict[tuple[str, str, str], _Children] = {}
        self._requests_by_labels: dict[tuple[str, str, str, str, int], Any] = {}
        self.in_flight = Gauge(
            "finops_backend_in_flight", "Calls in flight per backend", ["backend"], registry=r
        )

    def _children(self, labels: tuple[str, str, str]) -> _Children:
        # labels() takes a lock and builds a key each call; the children of a label set never change.
        children = self._by_labels.get(labels)
        if children is None:
            children = _Children(
                self.tokens.labels(*labels, "prompt"),
                self.tokens.labels(*labels, "completion"),
                self.cost.labels(*labels),
                self.estimated.labels(*labels),
                self.ttft.labels(*labels),
                self.itl.labels(*labels),
                self.latency.labels(*labels),
            )
            self._by_labels[labels] = children
        return children

    def _labels(self, model: str, team: str, feature: str) -> tuple[str, str, str]:
        labels = (model, team, feature)
        if labels in self._by_labels or len(self._by_labels) < MAX_LABEL_SETS:
            return labels
        return (model, OVERFLOW, OVERFLOW)

    def observe(self, records: Sequence[UsageRecord]) -> None:
        for rec in records:
            labels = self._labels(rec.model, rec.team, rec.feature)
            key = (*labels, rec.endpoint, rec.status_code)
            requests = self._requests_by_labels.get(key)
            if requests is None:
                requests = self._requests_by_labels[key] = self.requests.labels(
                    *labels, rec.endpoint, str(rec.status_code)
                )
            requests.inc()
            children = self._children(labels)
            if rec.prompt_tokens:
                children.prompt_tokens.inc(rec.prompt_tokens)
            if rec.completion_tokens:
                children.completion_tokens.inc(rec.completion_tokens)
            if rec.cost_nusd:
                children.cost.inc(rec.cost_nusd / 1e9)
            if rec.tokens_estimated:
                children.estimated.inc()
            if rec.ttft_ms is not None:
                children.ttft.observe(rec.ttft_ms / 1000.0)
            if rec.itl_ms is not None:
                children.itl.observe(rec.itl_ms / 1000.0)
            children.latency.observe(rec.latency_ms / 1000.0)
            self.call_events.observe(rec, labels)

    def bind_in_flight(self, backend: str, read: Callable[[], float]) -> None:
        self.in_flight.labels(backend).set_function(read)
