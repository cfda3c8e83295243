"""A budget's spend is exact whatever the rollups hold: before any rollup, after one, with calls that
landed since (late ones in rolled-up hours too), in time zones whose months start on the half hour."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from finops.attribution.models import GpuLedgerRow
from finops.attribution.service import mark_hours_dirty
from finops.budgets.periods import month_bounds
from finops.budgets.queries import daily_spend
from finops.budgets.service import sync_config_budgets
from finops.budgets.spend import Scope, spend_by, spend_nusd, spend_of_scopes
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.models import TokenLedgerRow
from tests.budgets.support import config_with, spend

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def totals(engine, scope, start, end, basis="tokens"):
    with unit_of_work(engine) as session:
        total = spend_nusd(session, scope, basis, start, end)
        # Many scopes read at once give each the same figure.
        others = [Scope(), Scope(team="search"), Scope(team="ads", feature="a"), Scope(model="m")]
        assert spend_of_scopes(session, [scope, *others], basis, start, end) == [
            total,
            *(spend_nusd(session, other, basis, start, end) for other in others),
        ]
        return total, spend_by(session, scope, basis, start, end, "feature")


def test_spend_is_exact_before_and_after_rollups_and_with_late_calls(db_url):
    engine = make_engine(db_url)
    config = config_with(db_url, [])
    start, end = month_bounds(NOW, "UTC")
    calls = [
        (start - timedelta(seconds=1), 1_000_000, "search", "a"),  # the month before: not counted
        (start, 7, "search", "a"),
        (NOW - timedelta(hours=30), 11, "search", "b"),
        (NOW - timedelta(hours=2), 13, "ads", "a"),
        (NOW - timedelta(minutes=5), 17, "search", "a"),
        (end, 1_000_000, "search", "a"),  # the next month
    ]
    for at, cost, team, feature in calls:
        spend(engine, at, cost, team=team, feature=feature)
    search = Scope(team="search")
    assert totals(engine, search, start, end) == (35, {"a": 24, "b": 11})
    assert totals(engine, Scope(), start, end)[0] == 48
    run_job(engine, config, "rollups", now=NOW)
    assert totals(engine, search, start, end) == (35, {"a": 24, "b": 11})
    # Calls that land after the rollup, one of them late into an hour already rolled up.
    spend(engine, NOW - timedelta(hours=30), 19, team="search", feature="b")
    spend(engine, NOW, 23, team="search", feature="c")
    assert totals(engine, search, start, end) == (77, {"a": 24, "b": 30, "c": 23})
    run_job(engine, config, "rollups", now=NOW)
    assert totals(engine, search, start, end) == (77, {"a": 24, "b": 30, "c": 23})
    assert totals(engine, Scope(team="search", feature="b", model="llama-8b"), start, end)[0] == 30
    assert totals(engine, Scope(model="other"), start, end)[0] == 0
    engine.dispose()


def test_a_month_that_starts_on_the_half_hour(db_url):
    """Asia/Kolkata is UTC+5:30: its months start at 18:30 UTC, inside an hour of the rollups."""
    engine = make_engine(db_url)
    config = config_with(db_url, [], timezone="Asia/Kolkata")
    start, end = month_bounds(NOW, config.timezone)
    assert start == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)
    spend(engine, start - timedelta(minutes=1), 1_000)  # 18:29 UTC: October in Kolkata
    spend(engine, start, 3)
    spend(engine, start + timedelta(minutes=20), 5)
    spend(engine, end - timedelta(minutes=1), 7)
    spend(engine, end, 2_000)
    run_job(engine, config, "rollups", now=NOW)
    assert totals(engine, Scope(), start, end)[0] == 15
    engine.dispose()


def test_gpu_basis_counts_idle_only_for_a_global_budget(db_url):
    engine = make_engine(db_url)
    start, end = month_bounds(NOW, "UTC")
    window = NOW.replace(minute=0)
    rows = [
        dict(request_id="r1", team="search", feature="a", model="m", cost_nusd=100),
        dict(request_id="r2", team="ads", feature="a", model="m", cost_nusd=30),
        dict(request_id=None, team=None, feature=None, model=None, cost_nusd=5),
    ]
    with unit_of_work(engine) as session:
        session.execute(
            insert(GpuLedgerRow),
            [
                dict(
                    backend="gpu-a",
                    window_start=window,
                    window_end=window + timedelta(minutes=1),
                    gpu_seconds=Decimal(1),
                    **row,
                )
                for row in rows
            ],
        )
        # As the attribution job does: the hour's rollup is stale until the rollups job runs.
        mark_hours_dirty(session, window, window + timedelta(minutes=1))
    assert totals(engine, Scope(team="search"), start, end, "gpu")[0] == 100
    assert totals(engine, Scope(), start, end, "gpu") == (135, {"a": 130, "(idle)": 5})
    # Rolled up (the hour is no longer dirty once the rollups job ran): the same figures.
    run_job(engine, config_with(str(engine.url), []), "rollups", now=NOW)
    assert totals(engine, Scope(team="search"), start, end, "gpu")[0] == 100
    assert totals(engine, Scope(), start, end, "gpu") == (135, {"a": 130, "(idle)": 5})
    engine.dispose()


def test_spend_matches_the_ledger_at_every_step_of_random_rollups_and_late_calls(db_url):
    """Calls landing in random hours (late ones too) interleaved with rollup runs: after every step the
    spend of every scope equals the plain sum of its ledger rows in the period."""
    rng = random.Random(20261130)
    engine = make_engine(db_url)
    budgets = [{"name": "search", "scope": {"team": "search"}, "monthly_usd": 10}]
    # UTC-3:30: half-hour month and day edges.
    config = config_with(db_url, budgets, timezone="America/St_Johns")
    zone = ZoneInfo(config.timezone)
    start, end = month_bounds(NOW, config.timezone)
    scopes = [Scope(), Scope(team="search"), Scope(feature="b"), Scope(team="ads", model="llama-8b")]
    with unit_of_work(engine) as session:
        sync_config_budgets(session, config)
    for step in range(12):
        for _ in range(rng.randint(1, 6)):
            at = start + timedelta(minutes=rng.randint(-90, int((end - start).total_seconds() // 60) + 90))
            spend(
                engine,
                at,
                rng.randint(1, 10**6),
                team=rng.choice(["search", "ads"]),
                feature=rng.choice("ab"),
            )
        if rng.random() < 0.6:
            run_job(engine, config, "rollups", now=NOW + timedelta(minutes=step))
        expected_of: dict[Scope, int] = {}
        with unit_of_work(engine) as session:
            for scope in scopes:
                t = TokenLedgerRow
                conditions = [t.started_at >= start, t.started_at < end]
                for column, value in (
                    (t.team, scope.team),
                    (t.feature, scope.feature),
                    (t.model, scope.model),
                ):
                    if value is not None:
                        conditions.append(column == value)
                expected = int(
                    session.scalar(select(func.coalesce(func.sum(t.cost_nusd), 0)).where(*conditions))
                )
                assert spend_nusd(session, scope, "tokens", start, end) == expected, (step, scope)
                assert sum(spend_by(session, scope, "tokens", start, end, "team").values()) == expected
                expected_of[scope] = expected
            assert spend_of_scopes(session, scopes, "tokens", start, end) == [expected_of[s] for s in scopes]
            # The burn-down's days: each the plain sum of the team's calls in that local day.
            per_day: Counter[date] = Counter()
            for at, cost in session.execute(
                select(TokenLedgerRow.started_at, TokenLedgerRow.cost_nusd).where(
                    TokenLedgerRow.team == "search",
                    TokenLedgerRow.started_at >= start,
                    TokenLedgerRow.started_at < end,
                )
            ):
                per_day[at.astimezone(zone).date()] += cost
            days = daily_spend(session, config, "search", start, end)
            assert len(days) == 30 and all(total == per_day[day] for day, total in days), step
    engine.dispose()
