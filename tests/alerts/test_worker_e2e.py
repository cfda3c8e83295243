"""End to end with a real Celery worker (beat inside, embedded broker, SQLite, as ``finops up``): spend
crosses 50% then 80%; a real webhook receiver and a real SMTP server get exactly one message per
threshold per channel, with the right figures; a channel that fails three times then recovers gets
each message once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import yaml

from finops.db import make_engine
from tests.alerts.support import smtp_server, wait_for, webhook_receiver
from tests.budgets.support import USD, deliveries, spend
from tests.support.databases import fresh_sqlite
from tests.worker.support import Finops


def test_worker_delivers_each_threshold_once_to_every_channel(tmp_path):
    with (
        fresh_sqlite(tmp_path) as db_url,
        webhook_receiver() as slack,
        webhook_receiver(fail_first=3) as flaky,
        smtp_server() as mail,
    ):
        settings = {
            "database_url": db_url,
            "channels": {
                "slack-search": {"type": "slack", "webhook_url": slack.url},
                "flaky": {"type": "slack", "webhook_url": flaky.url},
                "finance-mail": {"type": "email", "to": ["finance@example.com"]},
            },
            "smtp": {"host": mail.host, "port": mail.port, "from": "finops@example.com", "starttls": False},
            "budgets": [
                {
                    "name": "search-team",
                    "scope": {"team": "search"},
                    "monthly_usd": 100,
                    "forecast": False,
                    "channels": ["slack-search", "finance-mail", "flaky"],
                }
            ],
            "jobs": {
                "budgets_every_s": 1,
                "attribution_every_s": 3600,
                "rollups_every_s": 3600,
                "traces_every_s": 3600,
            },
            "worker": {"broker_dir": str(tmp_path / "broker"), "beat_schedule_file": str(tmp_path / "beat")},
        }
        path = tmp_path / "finops.yaml"
        path.write_text(yaml.safe_dump(settings))
        engine = make_engine(db_url)
        worker = Finops(["worker", "--config", str(path), "--beat"], tmp_path / "worker.log")
        try:

            def counts() -> tuple[int, int, int]:
                return len(slack.received), len(mail.messages), len(flaky.received)

            def state() -> str:
                rows = [(d.channel, d.status, d.last_error) for d in deliveries(engine)]
                return f"received {counts()}; deliveries {rows}\n{worker.log()}"

            spend(engine, datetime.now(UTC), 55 * USD, team="search", feature="autocomplete")
            wait_for(lambda: counts() == (1, 1, 1), 90, state)
            spend(engine, datetime.now(UTC), 26 * USD, team="search", feature="summary")
            wait_for(lambda: counts() == (2, 2, 2), 60, state)
            time.sleep(4)  # several more runs of the job: nothing more is sent
            assert counts() == (2, 2, 2), state()
            assert worker.popen.poll() is None, worker.log()
        finally:
            worker.stop()
        # The webhook URLs are secrets: not in the worker's log, failures and retries included.
        assert "SECRETTOKEN" not in worker.log(tail=10**7)
        assert "temporarily broken" in worker.log(tail=10**7)  # the flaky channel's failures were logged

    # The figures, in Slack's blocks and in both parts of the email.
    eighty = json.dumps(slack.received[1]["blocks"])
    assert "Budget search-team passed 80%: $81.00 of $100.00 (81.00%)" in slack.received[1]["text"]
    for figure in (
        "team=search",
        "$81.00",
        "$100.00",
        "81.00%",
        "summary: $26.00 (32.1%)",
        "/spend?team=search",
    ):
        assert figure in eighty, figure
    email = mail.messages[1]
    assert email["Subject"].startswith("Budget search-team passed 80%")
    assert "autocomplete: $55.00 (67.9%)" in email.get_body(("plain",)).get_content()
    assert "autocomplete: $55.00 (67.9%)" in email.get_body(("html",)).get_content()
    assert "passed 50%" in slack.received[0]["text"] and "passed 50%" in flaky.received[0]["text"]
    # The flaky channel: three failures, then delivered; every delivery delivered once.
    rows = deliveries(engine)
    assert sorted((d.channel, d.status) for d in rows) == sorted(
        [(c, "delivered") for c in ("slack-search", "finance-mail", "flaky")] * 2
    )
    assert sorted(d.attempts for d in rows if d.channel == "flaky") == [1, 4]
    assert flaky.attempts == 5
    engine.dispose()
