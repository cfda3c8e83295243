"""The proxy's ``finops_call_events_total`` counter, fed from the ledger writer's thread (never the loop)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from finops.ledger.record import UsageRecord
from finops.observability.events import call_events, limit_for


class CallEventMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "finops_call_events_total",
            "Calls by event: context_overflow, context_over_limit, truncated, client_disconnected, "
            "upstream errors by kind",
            ["model", "team", "feature", "event"],
            registry=registry,
        )
        # Set by the proxy from config observability.context_limit_tokens.
        self.context_limits: dict[str, int] = {}
        self._children: dict[tuple[str, str, str, str], Any] = {}

    def observe(self, rec: UsageRecord, labels: tuple[str, str, str]) -> None:
        """Count ``rec``'s events under ``labels`` (model, team, feature, already capped by the caller)."""
        limit = limit_for(self.context_limits, rec.model) if self.context_limits else None
        events = call_events(
            rec.status_code,
            rec.error_type,
            rec.finish_reason,
            rec.client_disconnected,
            rec.prompt_tokens,
            limit,
        )
        for event in events:
            key = (*labels, event)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.counter.labels(*key)
            child.inc()
