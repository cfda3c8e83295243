"""Alerts (list, delivery status, re-delivery) and exports (streamed CSV) through the API, over the
real budgets job, outbox and export service."""

from __future__ import annotations

import csv
import io

from finops.alerts.outbox import MAX_ATTEMPTS, deliver
from finops.db import unit_of_work
from finops.exports.service import ExportRequest, iter_export
from finops.jobs.registry import run_job
from tests.api.support import WEBHOOK_URL, Api


def fire_alerts(api: Api) -> None:
    """Budgets so small that this month's spend crossed them, sent to a webhook that is down."""
    for team in ("search", "ads"):
        body = {
            "name": f"{team}-tiny",
            "scope": {"team": team},
            "monthly_usd": "0.00001",
            "channels": ["ops-slack", "log"],
        }
        response = api.client.post(api.url("/budgets"), headers=api.auth("admin"), json=body)
        assert response.status_code == 201, response.text
    run_job(api.engine, api.config, "budgets")


def deliveries(alert: dict, status: str | None = None) -> list[dict]:
    return [d for d in alert["deliveries"] if status is None or d["status"] == status]


def test_alerts_are_team_scoped_and_show_delivery_status(api: Api):
    fire_alerts(api)
    everyone = api.get("/alerts", "finance").json()["items"]
    assert {a["budget"] for a in everyone} == {"search-tiny", "ads-tiny"}
    search = api.get("/alerts", "search").json()["items"]
    assert search and {a["budget"] for a in search} == {"search-tiny"}
    assert all(a["scope"] == {"team": "search"} for a in search)
    assert {a["budget"] for a in api.get("/alerts", "ads").json()["items"]} == {"ads-tiny"}
    for alert in everyone:
        assert {d["channel"] for d in deliveries(alert)} == {"ops-slack", "log"}
        assert {d["status"] for d in deliveries(alert)} == {"pending"}
    first = api.get("/alerts", "admin", limit=1).json()
    assert len(first["items"]) == 1 and first["next_offset"] == 1
    rest = api.get("/alerts", "admin", limit=100, offset=1).json()
    assert [a["id"] for a in first["items"] + rest["items"]] == [a["id"] for a in everyone]


def test_redeliver_a_failed_delivery(api: Api):
    fire_alerts(api)
    alert = api.get("/alerts", "admin").json()["items"][0]
    slack = next(d for d in deliveries(alert) if d["channel"] == "ops-slack")
    console = next(d for d in deliveries(alert) if d["channel"] == "log")
    # The worker's own delivery function, run until it gives up on the broken webhook.
    for _ in range(MAX_ATTEMPTS):
        deliver(api.engine, api.config, slack["id"])
    assert deliver(api.engine, api.config, console["id"]).status == "delivered"

    status = api.get(f"/alerts/deliveries/{slack['id']}", "finance").json()
    assert (status["status"], status["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert status["last_error"] and WEBHOOK_URL not in status["last_error"]
    listed = api.get("/alerts", "admin").json()
    assert WEBHOOK_URL not in str(listed)

    refused = api.client.post(
        api.url(f"/alerts/deliveries/{slack['id']}/redeliver"), headers=api.auth("finance")
    )
    assert refused.status_code == 403
    again = api.client.post(api.url(f"/alerts/deliveries/{slack['id']}/redeliver"), headers=api.auth("admin"))
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
    # Back in the outbox: the worker's next attempt picks it up (and fails again, the hook being down).
    assert deliver(api.engine, api.config, slack["id"]).status == "pending"

    delivered = api.client.post(
        api.url(f"/alerts/deliveries/{console['id']}/redeliver"), headers=api.auth("admin")
    )
    assert delivered.status_code == 409 and delivered.json()["error"]["code"] == "conflict"
    missing = api.client.post(api.url("/alerts/deliveries/999999/redeliver"), headers=api.auth("admin"))
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "delivery_id"
    assert api.get("/alerts/deliveries/999999", "admin").status_code == 404


def export(api: Api, who: str, fmt: str, **params: object):
    return api.client.get(api.url(f"/exports/{fmt}"), headers=api.auth(who), params=params)


def test_exports_stream_the_same_bytes_as_the_service(api: Api):
    hours = {"start": api.start.isoformat(), "end": api.end.replace(minute=0).isoformat()}
    for fmt, basis in (("ledger", "tokens"), ("focus", "tokens"), ("focus", "gpu")):
        response = export(api, "finance", fmt, basis=basis, **hours)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment; filename=" in response.headers["content-disposition"]
        request = ExportRequest(fmt, api.start, api.end.replace(minute=0), None, None, basis)
        with unit_of_work(api.engine) as session:
            expected = b"".join(iter_export(session, api.config, request))
        assert response.content == expected
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert rows
    ledger = list(csv.reader(io.StringIO(export(api, "admin", "ledger", team="ads", **hours).text)))
    assert len(ledger) == 1 + sum(1 for c in api.calls if c.team == "ads")


def test_export_errors_come_before_any_byte(api: Api):
    hours = {"start": api.start.isoformat(), "end": api.end.replace(minute=0).isoformat()}
    cases = [
        ({**hours, "team": "nobody"}, "team"),
        ({**hours, "feature": "nothing"}, "feature"),
        ({"start": "2026-11-02T10:30:00", "end": "2026-11-02T12:00:00"}, "start"),
        ({"start": "2026-11-03", "end": "2026-11-02"}, "end"),
        ({**hours, "basis": "vibes"}, "basis"),
    ]
    for params, field in cases:
        response = export(api, "finance", "focus", **params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["field"] == field, (params, response.json())
    assert export(api, "finance", "parquet", **hours).status_code == 422
    assert export(api, "search", "ledger", **hours).status_code == 403


def test_an_export_covers_at_most_a_year(api: Api):
    response = export(api, "finance", "focus", start="2000-01-01", end="2026-01-01")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "start"
    assert export(api, "finance", "focus", start="2025-01-01", end="2026-01-01").status_code == 200
