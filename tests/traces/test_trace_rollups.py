"""The hourly trace rollup (``trace_rollups``) the Amplification page reads: equal to a scan of
``trace_costs`` for any period and filter, kept so by the traces job when a trace is reopened, and
filled by migration 0010 on an upgraded database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.migrate import downgrade, upgrade
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow, TraceRollupRow
from finops.traces.queries import AmplificationOverview, amplification_overview, factor_bin_labels
from finops.traces.rollup import FACTOR_BIN_EDGES, NO_FACTOR_BIN, factor_bin, recompute_range
from finops.traces.service import recompute_traces
from tests.support.records import make_record

START = datetime(2026, 11, 1, tzinfo=UTC)
HOURS = 30
TEAMS = ("search", "support")
FEATURES = ("qa", "chatbot", "autocomplete")
# Edges themselves, values either side of them, below 1, and no factor at all.
FACTORS = [None, "0.5", "1", "1.499999", *(str(e) for e in FACTOR_BIN_EDGES), "2.000001", "7.25", "19.999999"]


def random_traces(seed: int, count: int = 300) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        parts = [rng.randint(0, 5_000) for _ in BREAKDOWN_PARTS]
        costs = [rng.randint(0, 10**9) for _ in BREAKDOWN_PARTS]
        first = START + timedelta(microseconds=rng.randint(0, HOURS * 3_600_000_000 - 1))
        if n % 10 == 0:  # some on an hour boundary exactly
            first = first.replace(minute=0, second=0, microsecond=0)
        factor = rng.choice(FACTORS)
        rows.append(
            {
                "trace_id": f"t{seed}-{n}",
                "team": rng.choice(TEAMS),
                "feature": rng.choice(FEATURES),
                "first_call_at": first,
                "last_call_at": first + timedelta(seconds=5),
                "calls": rng.randint(1, 9),
                "retries": rng.randint(0, 3),
                "total_tokens": sum(parts),
                "total_cost_nusd": sum(costs),
                "amplification_tokens": None if factor is None else Decimal(factor),
                "amplification_cost": None if factor is None else Decimal(factor),
                "baseline_source": "none" if factor is None else "generation",
                "closed_at": first + timedelta(minutes=10),
                **{f"{p}_tokens": v for p, v in zip(BREAKDOWN_PARTS, parts, strict=True)},
                **{f"{p}_cost_nusd": v for p, v in zip(BREAKDOWN_PARTS, costs, strict=True)},
            }
        )
    return rows


def expected_overview(
    rows: list[dict[str, Any]], start: datetime, end: datetime, team: str | None, feature: str | None
) -> tuple[list[tuple[str, str, int]], list[tuple[Any, ...]]]:
    """The page's figures worked out in Python from the trace rows (no SQL, no rollup)."""
    labels = factor_bin_labels()
    chosen = [
        r
        for r in rows
        if start <= r["first_call_at"] < end
        and (team is None or r["team"] == team)
        and (feature is None or r["feature"] == feature)
    ]
    distribution = []
    features = []
    for name in sorted({r["feature"] for r in chosen}):
        mine = [r for r in chosen if r["feature"] == name]
        for index, label in enumerate(labels):
            n = sum(1 for r in mine if factor_bin(r["amplification_tokens"]) == index)
            if n:
                distribution.append((name, label, n))
        features.append(
            (
                name,
                len(mine),
                sum(r["total_tokens"] for r in mine),
                sum(r["total_cost_nusd"] for r in mine),
                {p: sum(r[f"{p}_tokens"] for r in mine) for p in BREAKDOWN_PARTS},
                {p: sum(r[f"{p}_cost_nusd"] for r in mine) for p in BREAKDOWN_PARTS},
            )
        )
    return distribution, features


def as_tuples(overview: AmplificationOverview) -> tuple[list[tuple[str, str, int]], list[tuple[Any, ...]]]:
    return overview.distribution, [
        (f.feature, f.traces, f.total_tokens, f.total_cost_nusd, f.tokens, f.cost_nusd)
        for f in overview.features
    ]


def test_factor_bin_is_the_bin_of_the_labels():
    labels = factor_bin_labels()
    assert factor_bin(None) == NO_FACTOR_BIN and labels[NO_FACTOR_BIN] == "n/a"
    assert factor_bin(Decimal("0.2")) == 0 and labels[0] == "1-1.5x"
    assert factor_bin(Decimal("1.5")) == 1 and labels[1] == "1.5-2x"
    assert factor_bin(Decimal("19.999999")) == 5 and factor_bin(Decimal("20")) == 6 and labels[6] == "20x+"


periods = st.tuples(
    st.integers(min_value=-90, max_value=(HOURS + 2) * 60),  # start, minutes from START
    st.integers(min_value=0, max_value=(HOURS + 2) * 60),  # length in minutes
    st.sampled_from([None, *TEAMS]),
    st.sampled_from([None, *FEATURES, "nowhere"]),
)


def test_rollup_reads_equal_the_trace_scan(db_url):
    rows = random_traces(seed=11)
    engine = make_engine(db_url)
    with unit_of_work(engine) as session:
        session.execute(insert(TraceCostRow), rows)
        recompute_range(session, START, START + timedelta(hours=HOURS))
        assert session.scalar(select(func.sum(TraceRollupRow.traces))) == len(rows)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(periods)
    def check(period: tuple[int, int, str | None, str | None]) -> None:
        offset, length, team, feature = period
        start = START + timedelta(minutes=offset)
        end = start + timedelta(minutes=length)
        with unit_of_work(engine) as session:
            found = as_tuples(amplification_overview(session, start, end, team=team, feature=feature))
        assert found == expected_overview(rows, start, end, team, feature)

    check()
    engine.dispose()


def overview_now(session: Session, start: datetime, end: datetime) -> Any:
    rows = [
        {c.key: getattr(r, c.key) for c in TraceCostRow.__table__.columns}
        for r in session.scalars(select(TraceCostRow))
    ]
    return as_tuples(amplification_overview(session, start, end)), expected_overview(
        rows, start, end, None, None
    )


def rollup_rows(session: Session) -> dict[tuple[datetime, str, int], int]:
    r = TraceRollupRow
    return {(h, f, b): n for h, f, b, n in session.execute(select(r.hour, r.feature, r.factor_bin, r.traces))}


def test_traces_job_moves_a_reopened_trace_in_the_rollup(db_url):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    at = datetime(2026, 11, 30, 12, 10, tzinfo=UTC)
    generation = {"stage": "generation", "prompt_tokens": 100, "completion_tokens": 20}
    insert_records(
        engine,
        [
            make_record(trace_id="a", started_at=at, **generation),
            make_record(trace_id="b", started_at=at + timedelta(minutes=5), feature="qa", **generation),
        ],
    )
    later = at + timedelta(hours=2)
    assert run_job(engine, config, "traces", now=later).closed == 2
    hour = at.replace(minute=0)
    with unit_of_work(engine) as session:
        assert rollup_rows(session) == {(hour, "autocomplete", 0): 1, (hour, "qa", 0): 1}
        found, expected = overview_now(session, hour, later)
        assert found == expected

    # A late call to "a" that started an hour earlier and was retrieval: the trace is reopened, its first
    # call (and so its hour) moves back and its factor bin changes. Its old hour must lose it.
    earlier = at - timedelta(hours=1)
    insert_records(
        engine,
        [
            make_record(
                trace_id="a", started_at=earlier, stage="retrieval", endpoint="embeddings", prompt_tokens=300
            ),
        ],
    )
    assert run_job(engine, config, "traces", now=later + timedelta(hours=1)).closed == 1
    with unit_of_work(engine) as session:
        rows = rollup_rows(session)
        assert rows[(hour, "qa", 0)] == 1
        assert (hour, "autocomplete", 0) not in rows
        moved = [(h, f, b) for (h, f, b) in rows if f == "autocomplete"]
        assert len(moved) == 1 and moved[0][0] == earlier.replace(minute=0) and moved[0][2] != 0
        assert sum(rows.values()) == 2
        found, expected = overview_now(session, earlier.replace(minute=0), later)
        assert found == expected
        assert found[1][0][0] == "autocomplete" and found[1][0][1] == 1

    # Recomputing the period rewrites the same rows: nothing counted twice.
    assert run_job(engine, config, "traces", now=later + timedelta(hours=2)).closed == 0
    with unit_of_work(engine) as session:
        assert recompute_traces(session, earlier - timedelta(hours=1), later).closed == 2
    with unit_of_work(engine) as session:
        assert rollup_rows(session) == rows
    engine.dispose()


def test_migration_fills_the_rollup_from_existing_traces(db_url):
    downgrade(db_url, "0009")
    rows = random_traces(seed=5, count=120)
    engine = make_engine(db_url)
    with unit_of_work(engine) as session:
        session.execute(insert(TraceCostRow), rows)
    upgrade(db_url)
    start, end = START - timedelta(hours=1), START + timedelta(hours=HOURS + 1)
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.sum(TraceRollupRow.traces))) == len(rows)
        filled = rollup_rows(session)
        found = as_tuples(amplification_overview(session, start, end))
        assert found == expected_overview(rows, start, end, None, None)
        # The same rows the traces job would write.
        recompute_range(session, start, end)
        assert rollup_rows(session) == filled
    engine.dispose()
