"""The stand-in's ``/metrics``: vLLM's metric names and labels, in Prometheus text format.

Kept as plain counters rendered by hand rather than through ``prometheus_client``: the server runs on
one event loop, so updates need no locks, and the hot path only adds integers.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

# vLLM's bucket bounds for time to first token, in seconds.
TTFT_BUCKETS_S: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
FINISH_REASONS = ("stop", "length", "abort")
# The simulated KV cache holds this many full-length sequences; usage is the share of it that the
# prompt and output tokens of running requests occupy.
KV_CACHE_SEQUENCES = 16
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class ModelStats:
    prompt_tokens: int = 0
    generation_tokens: int = 0
    requests_running: int = 0
    kv_tokens: int = 0
    # Prompt tokens looked up in, and found in, the prefix cache (vLLM counts tokens, not requests).
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    successes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FINISH_REASONS, 0))
    ttft_bucket_counts: list[int] = field(default_factory=lambda: [0] * len(TTFT_BUCKETS_S))
    ttft_count: int = 0
    ttft_sum_s: float = 0.0

    def observe_ttft(self, seconds: float) -> None:
        index = bisect.bisect_left(TTFT_BUCKETS_S, seconds)
        if index < len(self.ttft_bucket_counts):
            self.ttft_bucket_counts[index] += 1
        self.ttft_count += 1
        self.ttft_sum_s += seconds


class SimMetrics:
    def __init__(self, models: tuple[str, ...], max_model_len: int) -> None:
        self.by_model = {model: ModelStats() for model in models}
        self._kv_capacity_tokens = max_model_len * KV_CACHE_SEQUENCES

    def kv_cache_usage(self, stats: ModelStats) -> float:
        return min(1.0, stats.kv_tokens / self._kv_capacity_tokens)

    def render(self) -> bytes:
        lines: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

        def labels(model: str, extra: str = "") -> str:
            return f'{{model_name="{_escape(model)}",engine="0"{extra}}}'

        items = list(self.by_model.items())
        family("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
        lines += [f"vllm:num_requests_running{labels(m)} {s.requests_running}.0" for m, s in items]
        family("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
        lines += [f"vllm:num_requests_waiting{labels(m)} 0.0" for m, _ in items]
        for name in ("vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc"):
            family(name, "gauge", "KV-cache usage. 1 means 100 percent usage.")
            lines += [f"{name}{labels(m)} {self.kv_cache_usage(s)!r}" for m, s in items]
        family("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.")
        lines += [f"vllm:prompt_tokens_total{labels(m)} {s.prompt_tokens}.0" for m, s in items]
        family("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.")
        lines += [f"vllm:generation_tokens_total{labels(m)} {s.generation_tokens}.0" for m, s in items]
        # vLLM serves the prefix-cache counters under today's names and, until removed, the deprecated ones.
        for prefix in ("vllm:prefix_cache", "vllm:gpu_prefix_cache"):
            family(
                f"{prefix}_queries_total",
                "counter",
                "Prefix cache queries, in terms of number of queried tokens.",
            )
            lines += [f"{prefix}_queries_total{labels(m)} {s.prefix_cache_queries}.0" for m, s in items]
            family(
                f"{prefix}_hits_total", "counter", "Prefix cache hits, in terms of number of cached tokens."
            )
            lines += [f"{prefix}_hits_total{labels(m)} {s.prefix_cache_hits}.0" for m, s in items]
        family("vllm:request_success_total", "counter", "Count of successfully processed requests.")
        for model, stats in items:
            for reason, count in stats.successes.items():
                reason_labels = labels(model, f',finished_reason="{reason}"')
                lines.append(f"vllm:request_success_total{reason_labels} {count}.0")
        name = "vllm:time_to_first_token_seconds"
        family(name, "histogram", "Histogram of time to first token in seconds.")
        for model, stats in items:
            cumulative = 0
            for bound, count in zip(TTFT_BUCKETS_S, stats.ttft_bucket_counts, strict=True):
                cumulative += count
                bucket_labels = labels(model, f',le="{bound}"')
                lines.append(f"{name}_bucket{bucket_labels} {cumulative}.0")
            inf_labels = labels(model, ',le="+Inf"')
            lines.append(f"{name}_bucket{inf_labels} {stats.ttft_count}.0")
            lines.append(f"{name}_count{labels(model)} {stats.ttft_count}.0")
            lines.append(f"{name}_sum{labels(model)} {stats.ttft_sum_s!r}")
        lines.append("")
        return "\n".join(lines).encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
