"""The budgets job through ``run_job`` at injected times: thresholds crossed one by one, reruns, a
budget created above its thresholds, the forecast, a new month, and the messages' figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from finops.alerts import outbox
from finops.alerts.queries import list_alerts
from finops.budgets.queries import budget_statuses, daily_spend
from finops.budgets.service import create_budget
from finops.db import make_engine, unit_of_work
from finops.jobs.registry import run_job
from tests.budgets.support import USD, alerts, config_with, deliveries, spend

# Noon on the 2nd: too early in the month for a forecast (a run rate of a day and a half).
EARLY = datetime(2026, 11, 2, 12, tzinfo=UTC)
SEARCH = {
    "name": "search",
    "scope": {"team": "search"},
    "monthly_usd": "100",
    "channels": ["ops"],
    "forecast": False,
}


def crossed(engine):
    return [(a.kind, a.threshold, a.notified) for a in alerts(engine)]


def test_each_threshold_alerts_once_as_spend_crosses_it(db_url, capsys):
    engine = make_engine(db_url)
    config = config_with(db_url, [SEARCH])
    spend(engine, EARLY - timedelta(hours=1), 40 * USD, team="search", feature="autocomplete")
    spend(engine, EARLY - timedelta(hours=1), 500 * USD, team="ads")  # another team: not counted
    assert run_job(engine, config, "budgets", now=EARLY).alerts == 0
    spend(engine, EARLY, 15 * USD, team="search", feature="summary")  # 55%
    for _ in range(3):
        run_job(engine, config, "budgets", now=EARLY + timedelta(minutes=1))
    run_job(engine, config, "rollups", now=EARLY + timedelta(minutes=1))
    run_job(engine, config, "budgets", now=EARLY + timedelta(minutes=2))
    assert crossed(engine) == [("threshold", Decimal("0.5"), True)]
    spend(engine, EARLY + timedelta(minutes=2), 26 * USD, team="search", feature="summary")  # 81%
    result = run_job(engine, config, "budgets", now=EARLY + timedelta(minutes=3))
    assert (result.alerts, result.deliveries) == (1, 1)
    run_job(engine, config, "budgets", now=EARLY + timedelta(minutes=4))
    assert crossed(engine) == [("threshold", Decimal("0.5"), True), ("threshold", Decimal("0.8"), True)]
    rows = deliveries(engine)
    assert [(d.source, d.channel, d.status) for d in rows] == [("budget", "ops", "pending")] * 2
    # The 80% message's figures.
    text = rows[1].text
    assert "Budget search passed 80%: $81.00 of $100.00 (81.00%)" in text
    assert "Scope: team=search" in text and "Period: November 2026 (UTC)" in text
    assert "summary: $41.00 (50.6%)" in text and "autocomplete: $40.00 (49.4%)" in text
    assert "http://127.0.0.1:8050/spend?team=search" in text
    # Delivered once each, however many times the task runs.
    for d in rows:
        assert outbox.deliver(engine, config, d.id).status == "delivered"
        assert outbox.deliver(engine, config, d.id).status == "skipped"
    out = capsys.readouterr().out
    assert out.count("=== ALERT [ops]") == 2 and "passed 50%" in out and "passed 80%" in out
    with unit_of_work(engine) as session:
        views = list_alerts(session, team="search")
        pairs = [(v.threshold, v.deliveries[0].status) for v in views]
        assert pairs == [(Decimal("0.8"), "delivered"), (Decimal("0.5"), "delivered")]
        assert list_alerts(session, team="ads") == []
        [status] = budget_statuses(session, config, EARLY + timedelta(minutes=4))
        assert (status.spend_nusd, status.percent, status.crossed) == (
            81 * USD,
            Decimal("81.00"),
            [Decimal("0.5"), Decimal("0.8")],
        )
        days = daily_spend(session, config, "search", status.period_start, status.period_end)
        assert len(days) == 30 and sum(n for _, n in days) == 81 * USD and days[1][1] == 81 * USD
    engine.dispose()


def test_a_budget_created_above_its_thresholds_sends_one_alert_for_the_highest(db_url):
    engine = make_engine(db_url)
    config = config_with(db_url, [])
    spend(engine, EARLY, 85 * USD, team="search")
    with unit_of_work(engine) as session:
        create_budget(session, config, SEARCH)
    run_job(engine, config, "budgets", now=EARLY)
    run_job(engine, config, "budgets", now=EARLY)
    assert crossed(engine) == [("threshold", Decimal("0.5"), False), ("threshold", Decimal("0.8"), True)]
    assert len(deliveries(engine)) == 1 and "passed 80%" in deliveries(engine)[0].subject
    # The next month starts afresh.
    december = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    spend(engine, december, 60 * USD, team="search")
    run_job(engine, config, "budgets", now=december)
    assert crossed(engine)[-1] == ("threshold", Decimal("0.5"), True)
    assert alerts(engine)[-1].period_start == datetime(2026, 12, 1, tzinfo=UTC)
    engine.dispose()


def test_month_end_in_the_configured_time_zone(db_url):
    """22:30 UTC on 30 November is December in Tokyo: the call counts for December there."""
    engine = make_engine(db_url)
    config = config_with(db_url, [SEARCH], timezone="Asia/Tokyo")
    moment = datetime(2026, 11, 30, 22, 30, tzinfo=UTC)
    spend(engine, moment - timedelta(hours=12), 90 * USD, team="search")  # November in Tokyo
    spend(engine, moment, 55 * USD, team="search")
    run_job(engine, config, "budgets", now=moment)
    [alert] = alerts(engine)
    assert (alert.threshold, alert.spend_nusd) == (Decimal("0.5"), 55 * USD)
    assert alert.period_start == datetime(2026, 11, 30, 15, tzinfo=UTC)
    engine.dispose()


def test_forecast_alert_once_per_period(db_url):
    engine = make_engine(db_url)
    config = config_with(db_url, [{**SEARCH, "forecast": True}])
    tenth = datetime(2026, 11, 11, tzinfo=UTC)  # a third of the month gone
    spend(engine, tenth - timedelta(days=1), 34 * USD, team="search")  # projects to $102
    for minutes in (0, 1, 2):
        run_job(engine, config, "budgets", now=tenth + timedelta(minutes=minutes))
    assert crossed(engine) == [("forecast", Decimal(1), True)]
    [delivery] = deliveries(engine)
    assert "forecast $101.99" in delivery.subject or "forecast $102" in delivery.subject, delivery.subject
    engine.dispose()


def test_many_budgets_in_one_run_each_get_the_alerts_of_their_own_spend(db_url):
    """One run reads every budget's spend at once: each budget still gets exactly its thresholds."""
    engine = make_engine(db_url)
    spend(engine, EARLY - timedelta(hours=2), 30 * USD, team="search", feature="autocomplete")
    spend(engine, EARLY - timedelta(minutes=5), 25 * USD, team="search", feature="summary")
    spend(engine, EARLY - timedelta(hours=3), 90 * USD, team="ads", feature="summary")
    budgets = [
        {"name": "search", "scope": {"team": "search"}, "monthly_usd": "100"},  # 55%
        {"name": "search-auto", "scope": {"team": "search", "feature": "autocomplete"}, "monthly_usd": "50"},
        {"name": "summary", "scope": {"feature": "summary"}, "monthly_usd": "100"},  # 115%
        {"name": "ads", "scope": {"team": "ads"}, "monthly_usd": "1000"},  # 9%
        {"name": "everything", "monthly_usd": "1000"},  # 14.5%
        {"name": "gpu", "monthly_usd": "1", "basis": "gpu"},  # no GPU time recorded: 0%
    ]
    config = config_with(db_url, [{**b, "forecast": False, "channels": ["ops"]} for b in budgets])
    run_job(engine, config, "rollups", now=EARLY - timedelta(minutes=1))  # part rolled up, part not
    assert run_job(engine, config, "budgets", now=EARLY).alerts == 5
    got = sorted((a.budget_name, a.threshold, a.notified) for a in alerts(engine))
    assert got == [
        ("search", Decimal("0.5"), True),
        ("search-auto", Decimal("0.5"), True),  # 60%
        ("summary", Decimal("0.5"), False),
        ("summary", Decimal("0.8"), False),
        ("summary", Decimal("1"), True),
    ]
    assert [a.spend_nusd for a in alerts(engine) if a.budget_name == "summary"] == [115 * USD] * 3
    assert run_job(engine, config, "budgets", now=EARLY + timedelta(minutes=1)).alerts == 0
    engine.dispose()
