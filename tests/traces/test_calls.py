"""The call record: validation, stage matching and the cost split fallback."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from finops.traces import TraceCall, call_category, normalize_stage
from tests.traces.support import EPOCH_US


def make(**overrides: Any) -> TraceCall:
    base = TraceCall(
        request_id="c",
        started_at_us=EPOCH_US,
        ended_at_us=EPOCH_US + 1,
        endpoint="chat.completions",
        stage=None,
        status_code=200,
        prompt_tokens=10,
        completion_tokens=5,
        cost_nusd=100,
    )
    return replace(base, **overrides)


@pytest.mark.parametrize(
    ("endpoint", "stage", "category"),
    [
        ("chat.completions", None, "generation"),
        ("completions", "", "generation"),
        ("chat.completions", " Generation ", "generation"),
        ("embeddings", None, "retrieval"),
        ("embeddings", "generation", "retrieval"),
        ("embeddings", "safety", "safety"),
        ("chat.completions", "RETRIEVAL", "retrieval"),
        ("chat.completions", "rerank", "retrieval"),
        ("chat.completions", "embedding", "retrieval"),
        ("chat.completions", "Tool", "tool_steps"),
        ("chat.completions", "agent", "tool_steps"),
        ("chat.completions", "safety", "safety"),
        ("chat.completions", "summarize", "other"),
        ("chat.completions", "planner", "other"),
    ],
)
def test_categories(endpoint: str, stage: str | None, category: str) -> None:
    assert call_category(endpoint, stage) == category


def test_normalize_stage() -> None:
    assert normalize_stage("  ReRank ") == "rerank"
    assert normalize_stage("   ") is None
    assert normalize_stage(None) is None


def test_success_is_2xx_only() -> None:
    assert make(status_code=200).succeeded
    assert make(status_code=204).succeeded
    assert not make(status_code=499).succeeded
    assert not make(status_code=302).succeeded


@pytest.mark.parametrize(
    "overrides",
    [
        {"prompt_tokens": -1},
        {"cost_nusd": -1},
        {"system_tokens": 3, "user_tokens": 3},  # parts 6, prompt 10
        {"prompt_cost_nusd": 40},  # completion cost missing
        {"prompt_cost_nusd": 40, "completion_cost_nusd": 50},  # 90, not 100
        {"prompt_cost_nusd": 110, "completion_cost_nusd": -10},
    ],
)
def test_invalid_calls_are_rejected(overrides: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        make(**overrides)


def test_cost_split_fallback_goes_by_tokens_with_half_to_the_prompt() -> None:
    assert make(prompt_tokens=10, completion_tokens=5, cost_nusd=100).cost_split_nusd() == (67, 33)
    assert make(prompt_tokens=1, completion_tokens=1, cost_nusd=3).cost_split_nusd() == (2, 1)
    assert make(prompt_tokens=0, completion_tokens=0, cost_nusd=7).cost_split_nusd() == (7, 0)
    given = make(prompt_cost_nusd=10, completion_cost_nusd=90)
    assert given.cost_split_nusd() == (10, 90)
