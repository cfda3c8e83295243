"""Read a vLLM ``/metrics`` page (Prometheus text exposition) into one capacity sample of a backend.

vLLM renamed some metrics over time; each quantity lists the name vLLM serves today first and the
deprecated ones after it, and the first name present in the page wins (vLLM serves old and new names
side by side during a deprecation, and adding both would count twice):

- KV-cache usage: ``vllm:kv_cache_usage_perc``, deprecated ``vllm:gpu_cache_usage_perc``;
- prefix cache: counters ``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits`` (served with the
  ``_total`` suffix), deprecated ``vllm:gpu_prefix_cache_queries`` / ``vllm:gpu_prefix_cache_hits``, and
  v0's gauge ``vllm:gpu_prefix_cache_hit_rate``;
- ``vllm:num_requests_running``, ``vllm:num_requests_waiting``, ``vllm:prompt_tokens_total``,
  ``vllm:generation_tokens_total``.

A server with several models or engines (data parallel) has one series per engine: counts and
counters are summed over them; KV-cache usage is the fullest engine's (one full engine already queues).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

Series = list[tuple[dict[str, str], float]]


class ExpositionError(ValueError):
    """A /metrics page that cannot be read, with the line that broke it."""


@dataclass(frozen=True)
class CapacitySample:
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None
    prompt_tokens_total: float | None
    generation_tokens_total: float | None
    prefix_cache_queries_total: float | None
    prefix_cache_hits_total: float | None
    prefix_cache_hit_rate: float | None


RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
KV_CACHE_USAGE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
PROMPT_TOKENS = ("vllm:prompt_tokens_total",)
GENERATION_TOKENS = ("vllm:generation_tokens_total",)
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_HIT_RATE = ("vllm:gpu_prefix_cache_hit_rate",)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,?)')
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(text: str) -> dict[str, Series]:
    """Every sample of the page, by metric name: a list of (labels, value)."""
    samples: dict[str, Series] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _NAME.match(line)
        if match is None:
            raise ExpositionError(f"line {number}: no metric name: {raw[:120]!r}")
        name, pos = match.group(0), match.end()
        labels: dict[str, str] = {}
        if pos < len(line) and line[pos] == "{":
            pos += 1
            while True:
                while pos < len(line) and line[pos] == " ":
                    pos += 1
                if pos < len(line) and line[pos] == "}":
                    pos += 1
                    break
                label = _LABEL.match(line, pos)
                if label is None:
                    raise ExpositionError(f"line {number}: bad label set: {raw[:120]!r}")
                labels[label.group(1)] = _unescape(label.group(2))
                pos = label.end()
                if not label.group(3) and not line.startswith("}", pos):
                    raise ExpositionError(f"line {number}: bad label set: {raw[:120]!r}")
        rest = line[pos:].split()
        if not rest or len(rest) > 2:
            raise ExpositionError(
                f"line {number}: expected a value (and an optional timestamp): {raw[:120]!r}"
            )
        try:
            value = float(rest[0])
        except ValueError:
            raise ExpositionError(f"line {number}: value {rest[0]!r} is not a number") from None
        samples.setdefault(name, []).append((labels, value))
    return samples


def _first(samples: dict[str, Series], names: tuple[str, ...]) -> Series | None:
    for name in names:
        series = samples.get(name)
        if series:
            finite = [(labels, value) for labels, value in series if math.isfinite(value)]
            return finite or None
    return None


def _sum(samples: dict[str, Series], names: tuple[str, ...]) -> float | None:
    series = _first(samples, names)
    return None if series is None else sum(value for _, value in series)


def _max(samples: dict[str, Series], names: tuple[str, ...]) -> float | None:
    series = _first(samples, names)
    return None if series is None else max(value for _, value in series)


def _mean(samples: dict[str, Series], names: tuple[str, ...]) -> float | None:
    series = _first(samples, names)
    return None if series is None else sum(value for _, value in series) / len(series)


def capacity_sample(text: str) -> CapacitySample:
    """The backend's capacity figures from its /metrics page; a page with none of vLLM's is an error."""
    samples = parse_exposition(text)
    sample = CapacitySample(
        running=_sum(samples, RUNNING),
        waiting=_sum(samples, WAITING),
        kv_cache_usage=_max(samples, KV_CACHE_USAGE),
        prompt_tokens_total=_sum(samples, PROMPT_TOKENS),
        generation_tokens_total=_sum(samples, GENERATION_TOKENS),
        prefix_cache_queries_total=_sum(samples, PREFIX_QUERIES),
        prefix_cache_hits_total=_sum(samples, PREFIX_HITS),
        prefix_cache_hit_rate=_mean(samples, PREFIX_HIT_RATE),
    )
    if not any(name.startswith("vllm:") for name in samples):
        raise ExpositionError("no vLLM metrics in the page (no vllm:* series): is this a vLLM server?")
    return sample
