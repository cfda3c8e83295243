"""FOCUS and ledger exports against real databases (SQLite and Postgres), migrated by Alembic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from finops.db import make_engine, unit_of_work
from finops.exports import focus, ledger
from finops.exports.service import ExportError, ExportRequest, check_request, iter_export, stale_hours
from finops.jobs.registry import run_job
from finops.ledger.models import TokenLedgerRow
from finops.ledger.store import insert_records
from finops.rollups.models import UsageRollupRow
from tests.exports.support import (
    BOUNDARY,
    END,
    START,
    calls,
    config_for,
    gpu_ledger_nusd,
    parse,
    token_ledger_nusd,
    total,
    usd,
)

DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
# FOCUS 1.2 mandatory columns that MUST NOT be null in these rows (ChargeClass is null unless a correction).
NOT_NULL = set(focus.MANDATORY_COLUMNS) - {"ChargeClass"}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    insert_records(engine, calls())
    yield engine
    engine.dispose()


def export(engine: Engine, db_url: str, req: ExportRequest, **config: object) -> bytes:
    with unit_of_work(engine) as session:
        return b"".join(iter_export(session, config_for(db_url, **config), req))


def refresh(engine: Engine, db_url: str) -> None:
    config = config_for(db_url)
    run_job(engine, config, "attribution", now=END + timedelta(minutes=10))
    run_job(engine, config, "rollups")


def test_focus_columns_and_values_follow_the_spec(engine, db_url):
    refresh(engine, db_url)
    data = export(engine, db_url, ExportRequest("focus", START, END, basis="gpu"))
    rows = parse(data)
    assert tuple(data.split(b"\n", 1)[0].decode().split(",")) == focus.COLUMNS
    assert set(focus.MANDATORY_COLUMNS) <= set(focus.COLUMNS)
    assert len(focus.MANDATORY_COLUMNS) == 21
    assert all(c.startswith("x_") for c in focus.CUSTOM_COLUMNS)
    assert rows and {r["x_ChargeKind"] for r in rows} == {
        "input-tokens",
        "output-tokens",
        "gpu-time",
        "idle-gpu-time",
    }
    for r in rows:
        assert all(r[c] != "" for c in NOT_NULL), r
        assert r["ChargeClass"] == ""
        for column in ("BilledCost", "ListCost", "EffectiveCost", "ContractedCost", "PricingQuantity"):
            assert DECIMAL.match(r[column]), (column, r[column])
        assert r["BilledCost"] == r["ListCost"] == r["EffectiveCost"] == r["ContractedCost"]
        assert len(r["BilledCost"].split(".")[1]) == 9  # nano-USD, exact
        for column in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"):
            assert MOMENT.match(r[column]), (column, r[column])
        assert (r["ChargeCategory"], r["BillingCurrency"], r["ServiceCategory"]) == (
            "Usage",
            "USD",
            "AI and Machine Learning",
        )
        start = datetime.fromisoformat(r["ChargePeriodStart"])
        assert datetime.fromisoformat(r["ChargePeriodEnd"]) - start == timedelta(hours=1)
        assert start.minute == start.second == 0
        if r["x_ChargeKind"] == "idle-gpu-time":
            assert r["Tags"] == "" and r["x_Team"] == "" and r["ResourceId"] in ("gpu-a", "gpu-b")
        else:
            import json

            tags = json.loads(r["Tags"])
            assert set(tags) == {"team", "feature", "model"}
            assert tags["model"] == r["x_Model"]
            # Tag values are as the caller set them; the x_ and name columns are spreadsheet-safe.
            assert r["x_Team"] == ("'" + tags["team"] if tags["team"].startswith("=") else tags["team"])
        assert r["PricingUnit"] == ("Tokens" if "tokens" in r["x_ChargeKind"] else "GPU-Seconds")
        assert r["ConsumedQuantity"] == r["PricingQuantity"] and r["ConsumedUnit"] == r["PricingUnit"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


def test_the_month_boundary_splits_billing_periods(engine, db_url):
    refresh(engine, db_url)
    rows = parse(export(engine, db_url, ExportRequest("focus", START, END)))
    november = [r for r in rows if datetime.fromisoformat(r["ChargePeriodStart"]) < BOUNDARY]
    december = [r for r in rows if datetime.fromisoformat(r["ChargePeriodStart"]) >= BOUNDARY]
    assert november and december
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in november} == {
        ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    }
    assert {(r["BillingPeriodStart"], r["BillingPeriodEnd"]) for r in december} == {
        ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
    }
    # Each month's rows bill exactly that month's ledger, so per-invoice totals reconcile too.
    assert total(november, "BilledCost") == usd(token_ledger_nusd(engine, START, BOUNDARY))
    assert total(december, "BilledCost") == usd(token_ledger_nusd(engine, BOUNDARY, END))
    # A call running across midnight bills its GPU time to both months (by window).
    gpu = parse(export(engine, db_url, ExportRequest("focus", START, END, basis="gpu")))
    for month, (a, b) in (("11", (START, BOUNDARY)), ("12", (BOUNDARY, END))):
        in_month = [r for r in gpu if r["BillingPeriodStart"].startswith(f"2026-{month}")]
        assert total(in_month, "BilledCost") == usd(gpu_ledger_nusd(engine, a, b))


@pytest.mark.parametrize(
    "team,feature", [(None, None), ("search", None), ("=cmd", "summary"), (None, "summary")]
)
def test_billed_cost_reconciles_with_the_ledgers_to_the_nano_dollar(engine, db_url, team, feature):
    refresh(engine, db_url)
    tokens = parse(export(engine, db_url, ExportRequest("focus", START, END, team, feature, "tokens")))
    gpu = parse(export(engine, db_url, ExportRequest("focus", START, END, team, feature, "gpu")))
    expected_tokens = token_ledger_nusd(engine, START, END, team, feature)
    expected_gpu = gpu_ledger_nusd(engine, START, END, team, feature)
    assert expected_tokens > 0 and expected_gpu > 0
    assert total(tokens, "BilledCost") == usd(expected_tokens)
    assert total(gpu, "BilledCost") == usd(expected_gpu)
    # The other basis's cost is still there, informational, and adds up the same way.
    assert total(tokens, "x_GpuCost") == usd(expected_gpu)
    assert total(gpu, "x_TokenCost") == usd(expected_tokens)
    has_idle = any(r["x_ChargeKind"] == "idle-gpu-time" for r in gpu)
    assert has_idle == (team is None and feature is None)
    if team is not None:
        assert {r["x_Team"] for r in gpu} == {"'" + team if team.startswith("=") else team}


def test_hours_not_rolled_up_yet_are_read_from_the_ledgers(engine, db_url):
    refresh(engine, db_url)
    # More calls after the last rollup, and none of the jobs run again: the export is still exact.
    late = calls(6, start=START + timedelta(minutes=5), prefix="late")
    insert_records(engine, late)
    with unit_of_work(engine) as session:
        assert stale_hours(session, START, END) == {START}
    rows = parse(export(engine, db_url, ExportRequest("focus", START, END)))
    assert total(rows, "BilledCost") == usd(token_ledger_nusd(engine, START, END))
    # And with no rollup ever run, everything comes from the ledgers.
    with unit_of_work(engine) as session:
        session.execute(UsageRollupRow.__table__.delete())
        session.execute(UsageRollupRow.__table__.delete().where(UsageRollupRow.hour < START))
    from finops.jobs.models import JobStateRow

    with unit_of_work(engine) as session:
        session.execute(JobStateRow.__table__.delete().where(JobStateRow.name == "rollups"))
    again = parse(export(engine, db_url, ExportRequest("focus", START, END, basis="gpu")))
    assert total(again, "BilledCost") == usd(gpu_ledger_nusd(engine, START, END))


def test_rollups_keep_prompt_and_completion_cost_apart(engine, db_url):
    refresh(engine, db_url)
    r = UsageRollupRow
    t = TokenLedgerRow
    with unit_of_work(engine) as session:
        rolled = session.execute(
            select(
                func.sum(r.prompt_cost_nusd), func.sum(r.completion_cost_nusd), func.sum(r.token_cost_nusd)
            )
        ).one()
        ledger_sums = session.execute(
            select(func.sum(t.prompt_cost_nusd), func.sum(t.completion_cost_nusd), func.sum(t.cost_nusd))
        ).one()
        assert tuple(int(v) for v in rolled) == tuple(int(v) for v in ledger_sums)
        for line in session.scalars(select(r)):
            assert line.prompt_cost_nusd + line.completion_cost_nusd == line.token_cost_nusd


def test_ledger_export_has_every_call_once_with_its_costs(engine, db_url):
    refresh(engine, db_url)
    data = export(engine, db_url, ExportRequest("ledger", START, END))
    rows = parse(data)
    assert tuple(data.split(b"\n", 1)[0].decode().split(",")) == ledger.COLUMNS
    made = calls()
    assert len(rows) == len(made) == len({r["request_id"] for r in rows})
    assert total(rows, "cost_usd") == usd(sum(c.cost_nusd for c in made))
    assert total(rows, "prompt_cost_usd") == usd(sum(c.prompt_cost_nusd for c in made))
    # Every call's GPU cost: the GPU ledger's busy (non-idle) total.
    with unit_of_work(engine) as session:
        from finops.attribution.models import GpuLedgerRow as g

        busy = session.scalar(select(func.sum(g.cost_nusd)).where(g.request_id.is_not(None)))
    assert total(rows, "gpu_cost_usd") == usd(int(busy))
    assert [r["started_at"] for r in rows] == sorted(r["started_at"] for r in rows)
    assert {r["team"] for r in rows} == {"search", "ads", "'=cmd"}
    by_id = {c.request_id: c for c in made}
    first = rows[0]
    call = by_id[first["request_id"]]
    # The first call starts on a whole second: no fraction; others keep theirs without trailing zeros.
    assert first["started_at"] == call.started_at.strftime("%Y-%m-%dT%H:%M:%SZ") == "2026-11-30T23:15:00Z"
    second = rows[1]
    assert by_id[second["request_id"]].started_at.microsecond == 7919
    assert second["started_at"] == "2026-11-30T23:19:01.007919Z"
    assert first["latency_ms"] == f"{call.latency_ms:.3f}" and first["streamed"] == "false"
    assert Decimal(first["gpu_seconds"]) > 0
    filtered = parse(
        export(engine, db_url, ExportRequest("ledger", START, END, team="ads", feature="summary"))
    )
    assert filtered and {(r["team"], r["feature"]) for r in filtered} == {("ads", "summary")}


@pytest.mark.parametrize(
    "req,message,field",
    [
        (ExportRequest("focus", END, START), "inverted", "end"),
        (ExportRequest("focus", START, START), "inverted", "end"),
        (ExportRequest("xlsx", START, END), "unknown export format", "format"),  # type: ignore[arg-type]
        (ExportRequest("focus", START, END, basis="euros"), "unknown basis", "basis"),  # type: ignore[arg-type]
        (ExportRequest("focus", START, END, team="nobody"), "unknown team 'nobody'", "team"),
        (ExportRequest("ledger", START, END, feature="nothing"), "unknown feature 'nothing'", "feature"),
        (ExportRequest("focus", START + timedelta(minutes=5), END), "whole hours", "start"),
        (ExportRequest("focus", START, END + timedelta(minutes=5)), "whole hours", "end"),
        (ExportRequest("focus", START, None), "open-ended", "end"),  # type: ignore[arg-type]
    ],
)
def test_bad_requests_are_refused_with_a_message(engine, db_url, req, message, field):
    with unit_of_work(engine) as session:
        with pytest.raises(ExportError, match=message) as refused:
            check_request(session, req)
        assert refused.value.field == field
        with pytest.raises(ExportError, match=message):
            next(iter_export(session, config_for(db_url), req))
