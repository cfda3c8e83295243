"""The query layer the dashboards read (finops.rollups.queries, finops.traces.queries), on real
databases: series add up to the totals, days fold in the configured time zone, filters hold."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from sqlalchemy import insert

from finops.db import make_engine, unit_of_work
from finops.rollups.models import IDLE, UsageRollupRow
from finops.rollups.queries import (
    IDLE_LABEL,
    basis_cost_nusd,
    bucket_start,
    lines_of,
    per_unit_nusd,
    spend_by,
    spend_changes,
    spend_series,
    tag_values,
    total_spend,
)
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow
from finops.traces.queries import breakdown_by_feature, factor_bin_labels, factor_distribution
from finops.traces.rollup import recompute_range

START = datetime(2026, 11, 1, tzinfo=UTC)
TAGS = [
    ("search", "autocomplete", "llama-8b"),
    ("search", "qa", "qwen-1b"),
    ("support", "chatbot", "llama-8b"),
]


def rollup_rows(seed: int = 7, hours: int = 72) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for h in range(hours):
        hour = START + timedelta(hours=h)
        for backend in ("gpu-a", "gpu-b"):
            for team, feature, model in TAGS:
                if rng.random() < 0.4:
                    continue
                rows.append(
                    {
                        "hour": hour,
                        "team": team,
                        "feature": feature,
                        "model": model,
                        "backend": backend,
                        "calls": rng.randint(1, 500),
                        "errors": rng.randint(0, 5),
                        "prompt_tokens": rng.randint(0, 10**6),
                        "completion_tokens": rng.randint(0, 10**5),
                        "token_cost_nusd": rng.randint(0, 10**9),
                        "gpu_seconds": Decimal(rng.randint(0, 10**9)) / 10**6,
                        "gpu_cost_nusd": rng.randint(0, 10**9),
                        "idle_gpu_seconds": Decimal(0),
                        "idle_cost_nusd": 0,
                    }
                )
            idle = Decimal(rng.randint(0, 3600 * 10**6)) / 10**6
            rows.append(
                {
                    "hour": hour,
                    "team": IDLE,
                    "feature": IDLE,
                    "model": IDLE,
                    "backend": backend,
                    "calls": 0,
                    "errors": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "token_cost_nusd": 0,
                    "gpu_seconds": Decimal(0),
                    "gpu_cost_nusd": 0,
                    "idle_gpu_seconds": idle,
                    "idle_cost_nusd": rng.randint(0, 10**9),
                }
            )
    return rows


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    with unit_of_work(engine) as session:
        session.execute(insert(UsageRollupRow), rollup_rows())
    yield engine
    engine.dispose()


def test_series_add_up_to_the_totals_by_group(engine):
    # One database for every combination: migrating a fresh one per case would dominate the run.
    for by in ("team", "feature", "model", "backend"):
        for zone in ("UTC", "Asia/Kolkata", "America/Los_Angeles"):
            check_series(engine, by, zone)


def check_series(engine, by, zone):
    end = START + timedelta(hours=72)
    with unit_of_work(engine) as session:
        lines = {line.group: line for line in spend_by(session, START, end, by)}
        for bucket in ("hour", "day"):
            points = spend_series(session, START, end, by, bucket=bucket, timezone=zone)
            assert {p.group for p in points} == set(lines)
            for group, line in lines.items():
                mine = [p for p in points if p.group == group]
                for field in ("calls", "prompt_tokens", "token_cost_nusd", "gpu_cost_nusd", "idle_cost_nusd"):
                    assert sum(getattr(p, field) for p in mine) == getattr(line, field), (group, field)
                assert sum((p.gpu_seconds for p in mine), Decimal(0)) == line.gpu_seconds
            # Folding the series back gives exactly spend_by's lines (what the pages rely on).
            assert {line.group: line for line in lines_of(points)} == lines
            starts = [p.bucket_start for p in points]
            assert starts == sorted(starts)
            if bucket == "day":
                assert all(bucket_start(s, "day", zone) == s for s in starts)
                assert len(set(starts)) in (3, 4)  # 72 UTC hours span 3 or 4 local days


def test_idle_is_its_own_group_except_by_backend_and_drops_out_with_a_tag_filter(engine):
    end = START + timedelta(hours=72)
    with unit_of_work(engine) as session:
        by_team = {line.group for line in spend_by(session, START, end, "team")}
        assert by_team == {"search", "support", IDLE_LABEL}
        everything = total_spend(session, START, end)
        search = total_spend(session, START, end, team="search")
        assert search.idle_cost_nusd == 0 and everything.idle_cost_nusd > 0
        per_backend = spend_by(session, START, end, "backend")
        assert sum(line.idle_cost_nusd for line in per_backend) == everything.idle_cost_nusd
        assert basis_cost_nusd(everything, "gpu") == everything.gpu_cost_nusd + everything.idle_cost_nusd
        points = spend_series(session, START, end, "team", team="support", bucket="day")
        assert {p.group for p in points} == {"support"}


def test_changes_put_the_largest_move_first(engine):
    with unit_of_work(engine) as session:
        first = (START, START + timedelta(hours=24))
        second = (START + timedelta(hours=24), START + timedelta(hours=48))
        changes = spend_changes(session, second, first, "feature")
        before = {line.group: line.token_cost_nusd for line in spend_by(session, *first, "feature")}
        after = {line.group: line.token_cost_nusd for line in spend_by(session, *second, "feature")}
        assert {c.group for c in changes} == set(before) | set(after)
        for c in changes:
            assert (c.previous_nusd, c.current_nusd) == (before.get(c.group, 0), after.get(c.group, 0))
        moves = [abs(c.change_nusd) for c in changes]
        assert moves == sorted(moves, reverse=True)


def test_tag_values_respect_the_team(engine):
    end = START + timedelta(hours=72)
    with unit_of_work(engine) as session:
        every = tag_values(session, START, end)
        assert every.teams == ["search", "support"]
        assert every.backends == ["gpu-a", "gpu-b"]
        support = tag_values(session, START, end, team="support")
        assert support.teams == ["support"] and support.features == ["chatbot"]
        assert tag_values(session, end, end + timedelta(hours=1)).teams == []


def test_per_unit_is_exact():
    assert per_unit_nusd(10, 3, 1000) == Fraction(10_000, 3)
    assert per_unit_nusd(10, 0, 1000) is None


def trace_row(trace_id: str, team: str, feature: str, factor: str | None, parts: list[int]) -> dict:
    values = {
        "trace_id": trace_id,
        "team": team,
        "feature": feature,
        "first_call_at": START + timedelta(minutes=len(trace_id)),
        "last_call_at": START + timedelta(minutes=len(trace_id), seconds=3),
        "calls": 3,
        "retries": 1,
        "total_tokens": sum(parts),
        "total_cost_nusd": sum(parts) * 10,
        "amplification_tokens": None if factor is None else Decimal(factor),
        "amplification_cost": None if factor is None else Decimal(factor),
        "baseline_source": "generation" if factor else "none",
        "closed_at": START + timedelta(hours=1),
    }
    for part, value in zip(BREAKDOWN_PARTS, parts, strict=True):
        values[f"{part}_tokens"] = value
        values[f"{part}_cost_nusd"] = value * 10
    return values


def test_factor_bins_and_breakdowns(db_url):
    engine = make_engine(db_url)
    rows = [
        trace_row("t1", "search", "qa", "1.0", [10, 0, 0, 0, 0, 0, 0]),
        trace_row("t2", "search", "qa", "1.5", [10, 5, 0, 0, 0, 0, 0]),  # an edge goes to the bin above
        trace_row("t3", "search", "qa", "25", [4, 60, 20, 10, 2, 3, 1]),
        trace_row("t4", "support", "chatbot", None, [0, 0, 7, 0, 0, 0, 0]),
        trace_row("t5", "support", "chatbot", "4.99", [5, 10, 0, 5, 0, 4, 0]),
    ]
    end = START + timedelta(days=1)
    with unit_of_work(engine) as session:
        session.execute(insert(TraceCostRow), rows)
        # Written here without the traces job: its hourly rollup, which the page reads, by hand.
        recompute_range(session, START, end)
    with unit_of_work(engine) as session:
        labels = factor_bin_labels()
        assert labels[0] == "1-1.5x" and labels[-2] == "20x+" and labels[-1] == "n/a"
        found = factor_distribution(session, START, end)
        assert sorted(found) == sorted(
            [
                ("qa", "1-1.5x", 1),
                ("qa", "1.5-2x", 1),
                ("qa", "20x+", 1),
                ("chatbot", "n/a", 1),
                ("chatbot", "3-5x", 1),
            ]
        )
        assert factor_distribution(session, START, end, team="search", feature="chatbot") == []
        features = {f.feature: f for f in breakdown_by_feature(session, START, end)}
        assert set(features) == {"qa", "chatbot"}
        for f in features.values():
            assert sum(f.tokens.values()) == f.total_tokens
            assert sum(f.cost_nusd.values()) == f.total_cost_nusd
        assert features["qa"].traces == 3
        assert features["qa"].amplification_tokens == Fraction(10 + 15 + 100, 24)
        only = breakdown_by_feature(session, START, end, team="support")
        assert [f.feature for f in only] == ["chatbot"]
    engine.dispose()
