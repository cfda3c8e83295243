"""The pure parts of the stand-in: generated words, embeddings, knobs, settings, error shapes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finops.sim.generation import WORDS, embedding_vector, output_words
from finops.sim.knobs import NO_OVERRIDES, KnobError, parse_overrides
from finops.sim.metrics import SimMetrics
from finops.sim.responses import error_type
from finops.sim.settings import SimSettings
from finops.tokens.counting import count_text


def test_every_word_is_one_token_with_its_leading_space() -> None:
    assert len(WORDS) == 64
    assert [word for word in WORDS if count_text(word) != 1 or not word.startswith(" ")] == []


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200), seed=st.integers(-(2**63), 2**63 - 1), count=st.integers(0, 600))
def test_output_text_counts_exactly_as_many_tokens_as_words(body: bytes, seed: int, count: int) -> None:
    words = output_words(body, seed, count)
    assert len(words) == count
    assert count_text("".join(words)) == count


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 64, 255, 256, 1000, 4096])
def test_long_outputs_count_exactly(count: int) -> None:
    assert count_text("".join(output_words(b'{"messages": []}', 7, count))) == count


def test_outputs_are_deterministic_prefixes_and_depend_on_body_and_seed() -> None:
    full = output_words(b"request", 0, 100)
    assert output_words(b"request", 0, 100) == full
    assert output_words(b"request", 0, 10) == full[:10]
    assert output_words(b"request!", 0, 100) != full
    assert output_words(b"request", 1, 100) != full


def test_embeddings_are_unit_vectors_determined_by_text_and_seed() -> None:
    vector = embedding_vector(b"hello", 0, 32)
    assert len(vector) == 32
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)
    assert embedding_vector(b"hello", 0, 32) == vector
    assert embedding_vector(b"hello", 1, 32) != vector
    assert embedding_vector(b"hello!", 0, 32) != vector


def test_headers_without_sim_knobs_give_no_overrides() -> None:
    assert parse_overrides([(b"content-type", b"application/json")]) is NO_OVERRIDES


def test_sim_headers_are_parsed() -> None:
    overrides = parse_overrides(
        [
            (b"x-sim-ttft-ms", b"12.5"),
            (b"x-sim-itl-ms", b"3"),
            (b"x-sim-output-tokens", b"40"),
            (b"x-sim-error-status", b"503"),
            (b"x-sim-drop-after", b"0"),
            (b"x-sim-malformed", b"2"),
            (b"x-sim-no-usage", b"true"),
            (b"x-sim-cached-tokens", b"9"),
        ]
    )
    assert (overrides.ttft_ms, overrides.itl_ms, overrides.output_tokens) == (12.5, 3.0, 40)
    assert (overrides.error_status, overrides.drop_after, overrides.malformed_after) == (503, 0, 2)
    assert overrides.no_usage is True
    assert overrides.cached_tokens == 9


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (b"x-sim-ttft-ms", b"soon"),
        (b"x-sim-ttft-ms", b"-1"),
        (b"x-sim-ttft-ms", b"nan"),
        (b"x-sim-output-tokens", b"0"),
        (b"x-sim-error-status", b"200"),
        (b"x-sim-drop-after", b"-2"),
        (b"x-sim-no-usage", b"maybe"),
        (b"x-sim-typo", b"1"),
    ],
)
def test_bad_sim_headers_are_rejected(header: bytes, value: bytes) -> None:
    with pytest.raises(KnobError):
        parse_overrides([(header, value)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": ()},
        {"models": ("a", "a")},
        {"ttft_ms": -1.0},
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"output_tokens": 0},
        {"error_status": 200},
        {"max_model_len": 1},
        {"embedding_dim": 0},
    ],
)
def test_settings_reject_unusable_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "BadRequestError"),
        (404, "NotFoundError"),
        (429, "TooManyRequestsError"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailableError"),
    ],
)
def test_error_types_follow_vllm_naming(status: int, expected: str) -> None:
    assert error_type(status) == expected


def test_kv_cache_usage_is_a_share_of_capacity_capped_at_one() -> None:
    metrics = SimMetrics(("m",), max_model_len=100)
    stats = metrics.by_model["m"]
    stats.kv_tokens = 400
    assert metrics.kv_cache_usage(stats) == 0.25
    stats.kv_tokens = 10_000
    assert metrics.kv_cache_usage(stats) == 1.0
