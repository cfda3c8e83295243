"""Reading vLLM's /metrics pages: today's names, the deprecated ones, and v0's."""

from __future__ import annotations

import pytest

from finops.observability.exposition import ExpositionError, capacity_sample, parse_exposition
from tests.observability.vllm_pages import CURRENT, DEPRECATED_ONLY, V0


def test_current_page_sums_engines_and_does_not_count_deprecated_twice():
    sample = capacity_sample(CURRENT)
    assert sample.running == 21.0
    assert sample.waiting == 4.0
    # The fullest engine's cache, read from the current name (the deprecated one carries the same).
    assert sample.kv_cache_usage == 0.97
    assert sample.prompt_tokens_total == 2_000_000.0
    assert sample.generation_tokens_total == 500_000.0
    # 100k, not 200k: the deprecated gpu_prefix_cache_* series are not added to the current ones.
    assert sample.prefix_cache_queries_total == 100_000.0
    assert sample.prefix_cache_hits_total == 40_000.0
    assert sample.prefix_cache_hit_rate is None


def test_deprecated_names_alone_are_accepted():
    sample = capacity_sample(DEPRECATED_ONLY)
    assert (sample.running, sample.waiting, sample.kv_cache_usage) == (0.0, 0.0, 0.02)
    assert (sample.prefix_cache_queries_total, sample.prefix_cache_hits_total) == (500.0, 125.0)
    assert (sample.prompt_tokens_total, sample.generation_tokens_total) == (1000.0, 250.0)


def test_v0_hit_rate_gauge():
    sample = capacity_sample(V0)
    assert sample.kv_cache_usage == 0.5
    assert sample.prefix_cache_hit_rate == 0.25
    assert sample.prefix_cache_queries_total is None


def test_labels_with_escapes_commas_and_braces():
    page = 'vllm:num_requests_running{model_name="a \\"b\\", {c}",engine="0"} 3\n'
    assert parse_exposition(page) == {
        "vllm:num_requests_running": [({"model_name": 'a "b", {c}', "engine": "0"}, 3.0)]
    }


def test_timestamps_and_special_values():
    page = "vllm:num_requests_waiting 2 1700000000000\nvllm:kv_cache_usage_perc NaN\n"
    samples = parse_exposition(page)
    assert samples["vllm:num_requests_waiting"] == [({}, 2.0)]
    sample = capacity_sample(page)
    assert sample.waiting == 2.0 and sample.kv_cache_usage is None  # NaN is no reading


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ('vllm:num_requests_running{model_name="x} 1\n', "line 1: bad label set"),
        ("vllm:num_requests_running\n", "line 1: expected a value"),
        ("# ok\nvllm:num_requests_running one\n", "line 2: value 'one' is not a number"),
        ("{x=1} 2\n", "line 1: no metric name"),
        ("<html>not metrics</html>\n", "line 1"),
        ("process_cpu_seconds_total 1.0\n", "no vLLM metrics in the page"),
    ],
)
def test_bad_pages_are_clear_errors(page, message):
    with pytest.raises(ExpositionError, match=message):
        capacity_sample(page)
