"""Retry marks: by header, by body hash, by failure, and the cases the rules settle."""

from __future__ import annotations

from dataclasses import replace

from finops.traces import TraceCall, compute
from tests.traces.support import chat, embed


def reasons(*calls: TraceCall) -> list[str | None]:
    return [mark.retry_reason for mark in compute("t", calls).marks]


def test_retry_by_header() -> None:
    assert reasons(chat("a", 0, user=5, out=5), chat("b", 1, user=5, out=5, retry_of="a")) == [None, "header"]


def test_retry_by_body_hash() -> None:
    assert reasons(chat("a", 0, user=5, body="h"), chat("b", 1, user=5, body="h")) == [None, "hash"]


def test_retry_by_failure_of_any_stage() -> None:
    calls = [
        chat("s", 0, stage="safety", user=5, status=429),
        chat("a", 1, user=5, status=400),
        chat("b", 2, user=5, status=499),
        chat("c", 3, user=5, out=1),
    ]
    assert reasons(*calls) == ["failed", "failed", "failed", None]


def test_failed_repeat_is_marked_by_what_it_repeats() -> None:
    calls = [
        chat("a", 0, user=5, out=1, body="h"),
        chat("b", 1, user=5, status=500, body="h"),
        chat("c", 2, user=5, status=500, body="x", retry_of="a"),
    ]
    assert reasons(*calls) == [None, "hash", "header"]


def test_header_wins_over_hash() -> None:
    calls = [chat("a", 0, user=5, body="h"), chat("b", 1, user=5, body="h", retry_of="a")]
    assert reasons(*calls) == [None, "header"]


def test_successful_repeat_of_failed_attempts_is_not_a_retry() -> None:
    calls = [
        chat("a", 0, user=5, status=502, body="h"),
        chat("b", 1, user=5, status=503, body="h"),
        chat("c", 2, user=5, out=9, body="h"),
        chat("d", 3, user=5, out=9, body="h"),
    ]
    assert reasons(*calls) == ["failed", "hash", None, "hash"]
    assert compute("t", calls).baseline_tokens == 14


def test_header_chain_through_a_failure_reaches_the_delivered_call() -> None:
    calls = [
        chat("a", 0, user=5, out=1),
        chat("b", 1, user=5, status=500, retry_of="a"),
        chat("c", 2, user=5, out=1, retry_of="b"),  # repeats a, through b
    ]
    assert reasons(*calls) == [None, "header", "header"]


def test_hash_then_header_lineage() -> None:
    calls = [
        chat("a", 0, user=5, out=1, body="h1"),
        chat("b", 1, user=5, status=500, body="h2", retry_of="a"),
        chat("c", 2, user=5, out=1, body="h2"),  # same body as b, whose lineage delivered in a
    ]
    assert reasons(*calls) == [None, "header", "hash"]


def test_retry_of_a_later_unknown_or_own_id_is_ignored() -> None:
    calls = [
        chat("a", 0, user=5, out=1, retry_of="b"),
        chat("b", 1, stage="tool", user=5, retry_of="elsewhere"),
        chat("c", 2, stage="tool", user=5, retry_of="c"),
    ]
    assert reasons(*calls) == [None, None, None]


def test_no_hash_means_no_hash_match() -> None:
    assert reasons(chat("a", 0, user=5), chat("b", 1, user=5)) == [None, None]


def test_repeated_embedding_counts_as_a_retry() -> None:
    calls = [replace(embed("a", 0, 10), body_sha256="e"), replace(embed("b", 1, 10), body_sha256="e")]
    trace = compute("t", [*calls, chat("g", 2, user=5, out=5)])
    assert [mark.retry_reason for mark in trace.marks] == [None, "hash", None]
    assert trace.tokens.retries == 10
    assert trace.tokens.retrieval == 10
