"""The outbox: idempotent enqueue, one send however many workers hold a delivery, retries with backoff
that end delivered or failed, redelivery by hand, and the sweep of deliveries whose task was lost."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import yaml

from finops.alerts import outbox
from finops.alerts.message import Message
from finops.cli import main
from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from tests.alerts.support import webhook_receiver
from tests.budgets.support import deliveries

MESSAGE = Message("subject", "text", "<p>html</p>", [{"type": "divider"}])


def enqueue(engine, channel="hook", source_id="1"):
    with unit_of_work(engine) as session:
        return outbox.enqueue(session, source="test", source_id=source_id, channel=channel, message=MESSAGE)


def test_enqueue_is_idempotent_and_dispatches_after_commit(db_url):
    engine = make_engine(db_url)
    dispatched: list[list[int]] = []
    outbox.set_dispatcher(dispatched.append)
    try:
        assert enqueue(engine) is True
        assert enqueue(engine) is False
        assert enqueue(engine, channel="other") is True
        # A transaction that rolls back dispatches nothing.
        try:
            with unit_of_work(engine) as session:
                outbox.enqueue(session, source="test", source_id="2", channel="hook", message=MESSAGE)
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    finally:
        outbox.set_dispatcher(None)
    rows = deliveries(engine)
    assert [(d.source_id, d.channel) for d in rows] == [("1", "hook"), ("1", "other")]
    assert dispatched == [[rows[0].id], [rows[1].id]]
    assert outbox.message_of(rows[0]) == MESSAGE
    engine.dispose()


def test_many_workers_holding_one_delivery_send_it_once(db_url):
    engine = make_engine(db_url)
    with webhook_receiver(delay_s=0.5) as hook:
        config = FinopsConfig.model_validate(
            {"channels": {"hook": {"type": "slack", "webhook_url": hook.url}}}
        )
        enqueue(engine)
        [row] = deliveries(engine)
        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(lambda _: outbox.deliver(engine, config, row.id).status, range(6)))
    assert sorted(outcomes) == ["delivered"] + ["skipped"] * 5
    assert len(hook.received) == 1
    [row] = deliveries(engine)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
    engine.dispose()


def test_a_failing_channel_is_retried_with_backoff_then_delivered_once(db_url):
    engine = make_engine(db_url)
    with webhook_receiver(fail_first=3) as hook:
        config = FinopsConfig.model_validate(
            {"channels": {"hook": {"type": "slack", "webhook_url": hook.url}}}
        )
        enqueue(engine)
        [row] = deliveries(engine)
        due = []
        for attempt in (1, 2, 3):
            outcome = outbox.deliver(engine, config, row.id)
            assert (outcome.status, outcome.attempts) == ("pending", attempt)
            [row] = deliveries(engine)
            assert "HTTP 500" in (row.last_error or "") and "SECRETTOKEN" not in (row.last_error or "")
            due.append(row.next_attempt_at - datetime.now(UTC))
        assert due[0] < due[1] < due[2] <= timedelta(seconds=4)  # 1, 2, 4 s
        assert outbox.deliver(engine, config, row.id).status == "delivered"
        assert outbox.deliver(engine, config, row.id).status == "skipped"
    assert len(hook.received) == 1 and hook.attempts == 4
    [row] = deliveries(engine)
    assert (row.status, row.attempts, row.delivered_at is not None) == ("delivered", 4, True)
    engine.dispose()


def test_a_delivery_that_fails_for_good_is_visible_and_can_be_redelivered(db_url, tmp_path, capsys):
    engine = make_engine(db_url)
    with webhook_receiver(fail_first=outbox.MAX_ATTEMPTS) as hook:
        settings = {"database_url": db_url, "channels": {"hook": {"type": "slack", "webhook_url": hook.url}}}
        config = FinopsConfig.model_validate(settings)
        path = tmp_path / "finops.yaml"
        path.write_text(yaml.safe_dump(settings))
        enqueue(engine)
        [row] = deliveries(engine)
        statuses = [outbox.deliver(engine, config, row.id).status for _ in range(outbox.MAX_ATTEMPTS)]
        assert statuses == ["pending"] * (outbox.MAX_ATTEMPTS - 1) + ["failed"]
        assert outbox.deliver(engine, config, row.id).status == "skipped"  # failed stays failed
        capsys.readouterr()
        assert main(["alerts", "list", "--config", str(path)]) == 0
        listed = capsys.readouterr().out
        assert f"delivery {row.id} -> hook: failed" in listed and "HTTP 500" in listed
        assert hook.url not in listed and "SECRETTOKEN" not in listed
        # The channel is fixed; the operator sends it again.
        assert main(["alerts", "redeliver", str(row.id), "--config", str(path)]) == 0
        assert main(["alerts", "redeliver", str(row.id), "--config", str(path)]) == 2
        assert "delivered already" in capsys.readouterr().err
        assert main(["alerts", "redeliver", "999999", "--config", str(path)]) == 2
    assert len(hook.received) == 1
    [row] = deliveries(engine)
    assert (row.status, row.attempts) == ("delivered", 1)
    engine.dispose()


def test_the_sweep_finds_deliveries_whose_task_was_lost(db_url):
    engine = make_engine(db_url)
    enqueue(engine, source_id="lost")
    [row] = deliveries(engine)
    dispatched: list[list[int]] = []
    outbox.set_dispatcher(dispatched.append)
    try:
        with unit_of_work(engine) as session:
            assert outbox.sweep(session, now=row.created_at + timedelta(seconds=1)) == []  # not late yet
        with unit_of_work(engine) as session:
            assert outbox.sweep(session, now=row.created_at + outbox.SWEEP_GRACE * 2) == [row.id]
    finally:
        outbox.set_dispatcher(None)
    assert dispatched == [[row.id]]
    engine.dispose()


def test_a_delivery_to_a_channel_no_longer_configured_fails_at_once(db_url):
    engine = make_engine(db_url)
    enqueue(engine, channel="gone")
    [row] = deliveries(engine)
    outcome = outbox.deliver(engine, FinopsConfig(), row.id)
    assert (outcome.status, outcome.attempts) == ("failed", 1)
    [row] = deliveries(engine)
    assert row.status == "failed" and "'gone' is not configured" in (row.last_error or "")
    engine.dispose()
