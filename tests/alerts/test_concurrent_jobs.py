"""Four processes run the budget job at the very same moment: each alert is still created once.

The test holds an exclusive lock on ``budget_alerts`` while four ``finops jobs run budgets`` processes
start; each computes its spend and then waits on that lock, so all four have decided the same alerts
before any inserts. Released together, they race on the unique key."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import yaml
from sqlalchemy import create_engine, text

from finops.db import make_engine
from finops.jobs.registry import run_job
from tests.budgets.support import USD, alerts, config_with, deliveries, spend


def test_four_processes_at_once_create_each_alert_once(pg_url, tmp_path):
    now = datetime.now(UTC)
    budgets = [
        {"name": "search", "scope": {"team": "search"}, "monthly_usd": "100", "channels": ["ops", "ops2"]},
        {"name": "everything", "monthly_usd": "50", "channels": ["ops"], "thresholds": [0.25, 0.5, 0.75, 1]},
    ]
    config = config_with(
        pg_url, budgets, channels={"ops": {"type": "console"}, "ops2": {"type": "console"}}, timezone="UTC"
    )
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True, exclude_none=True)))
    engine = make_engine(pg_url)
    run_job(engine, config, "budgets", now=now)  # budgets synced; nothing spent yet
    assert alerts(engine) == []
    spend(engine, now, 60 * USD, team="search")  # search 60%: 50%; everything 120%: all four

    locker = create_engine(pg_url)
    with locker.connect() as conn:
        conn.execute(text("LOCK TABLE budget_alerts IN ACCESS EXCLUSIVE MODE"))
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "finops.cli", "jobs", "run", "budgets", "--config", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        deadline = time.monotonic() + 60
        waiting = 0
        while time.monotonic() < deadline and waiting < 4:
            time.sleep(0.1)
            with locker.connect() as probe:
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                ).scalar_one()
        assert waiting == 4, "the four runs did not all reach the alerts table"
        conn.rollback()  # releases the lock: all four insert at once
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0] * 4, outputs
    locker.dispose()

    rows = alerts(engine)
    keys = [(a.budget_name, a.kind, a.threshold) for a in rows]
    assert len(keys) == len(set(keys))
    assert sorted((a.budget_name, str(a.threshold.normalize()), a.notified) for a in rows) == [
        ("everything", "0.25", False),
        ("everything", "0.5", False),
        ("everything", "0.75", False),
        ("everything", "1", True),
        ("search", "0.5", True),
    ]
    # Each alert was created by exactly one of the four runs, and only that run enqueued its deliveries.
    created = [int(m) for out in outputs for m in re.findall(r"alerts=(\d+)", out)]
    assert sum(created) == len(rows) and len(created) == 4, outputs
    channels = sorted((d.source_id, d.channel) for d in deliveries(engine))
    by_name = {a.budget_name: str(a.id) for a in rows if a.notified}
    assert channels == sorted(
        [(by_name["search"], "ops"), (by_name["search"], "ops2"), (by_name["everything"], "ops")]
    )
    engine.dispose()
