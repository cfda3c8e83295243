"""Benchmark of the dashboards' callbacks on a big ledger: by hand, not a test.

    python benchmarks/bench_dashboard.py [--rows 10000000] [--days 60] [--reuse] [--repeat 5]

Builds a Postgres database ``finops_bench_dashboard`` (dropped and made anew unless --reuse finds
one already filled) holding ``--rows`` ledger rows over the last ``--days`` days: 8 teams of 4
features each, 4 models on 8 backends, three calls per trace. The derived tables the dashboards read are
made from that ledger in SQL, the way the jobs would shape them: hourly ``usage_rollups`` (with idle
rows per backend and hour), one ``trace_costs`` row per trace and the hourly ``trace_rollups`` of
those, hourly ``latency_sketches`` and the daily ones (by the latency job's own code); the jobs'
watermarks are set at the newest ledger row, as when the jobs keep up. The config holds twelve budgets;
5,000 budget alerts with two deliveries each are added when the database has none.
Generating is not timed.

Timed: every page's callbacks, called as the browser calls them (POST /_dash-update-component on the
real Flask app, signed in), for an admin over 24 hours, the default period (7 days) and 30 days, and for a
team member over 30 days. Prints the median and slowest of ``--repeat`` calls per callback.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from dashboards.app import create_app
from dashboards.passwords import hash_password
from finops.budgets.service import sync_config_budgets
from finops.config import FinopsConfig
from finops.db import unit_of_work
from finops.migrate import upgrade
from finops.observability.rollup import rebuild_daily_sketches
from finops.observability.sketch import GAMMA, MIN_VALUE
from finops.traces.rollup import recompute_range

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_NAME = "finops_bench_dashboard"
DB_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB_NAME}"
BATCH = 1_000_000
MODELS = ("llama-70b", "llama-8b", "qwen-1.5b", "mistral-7b")
USD_PER_GPU_HOUR = 2.0
GPUS_PER_BACKEND = 4
RESULTS = Path(__file__).parent / "results" / "dashboard.json"

LEDGER_INSERT = """
INSERT INTO token_ledger (request_id, trace_id, started_at, ended_at, team, feature, model, requested_model,
    backend, stage, endpoint, streamed, status_code, prompt_tokens, completion_tokens, cached_tokens,
    tokens_estimated, ttft_ms, itl_ms, latency_ms, prompt_cost_nusd, completion_cost_nusd, cost_nusd, priced,
    client_disconnected)
SELECT 'r' || i, 'tr' || (i / 3), t, t + make_interval(secs => lat / 1000.0),
    'team-' || (f / 4), 'feature-' || f, m, m, m || '-' || (i % 2),
    CASE i % 3 WHEN 0 THEN 'retrieval' WHEN 1 THEN 'generation' ELSE 'safety' END,
    'chat.completions', i % 2 = 0, CASE WHEN i % 97 = 0 THEN 503 ELSE 200 END, p, c, 0, false,
    40 + i % 200, 5 + i % 20, lat, p * 100, c * 400, p * 100 + c * 400, true, false
FROM (
    SELECT i, f, (ARRAY['llama-70b', 'llama-8b', 'qwen-1.5b', 'mistral-7b'])[1 + f % 4] AS m,
        :start + make_interval(secs => (i::float8 * :span_s / :rows)) AS t,
        200 + (i * 7919) % 3000 AS p, 20 + (i * 104729) % 400 AS c, 300 + (i * 31) % 5000 AS lat
    FROM (SELECT i, (i / 3) % 32 AS f
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i) AS base
) AS calls
"""

ROLLUP_INSERT = f"""
INSERT INTO usage_rollups (hour, team, feature, model, backend, calls, errors, prompt_tokens,
    completion_tokens, prompt_cost_nusd, completion_cost_nusd, token_cost_nusd, gpu_seconds, gpu_cost_nusd,
    idle_gpu_seconds, idle_cost_nusd)
SELECT date_trunc('hour', started_at), team, feature, model, backend, count(*),
    sum(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END), sum(prompt_tokens), sum(completion_tokens),
    sum(prompt_cost_nusd), sum(completion_cost_nusd), sum(cost_nusd),
    round(sum(latency_ms)::numeric / 1000, 6),
    round(sum(latency_ms)::numeric / 1000 * {USD_PER_GPU_HOUR} / 3600 * 1e9),
    0, 0
FROM token_ledger GROUP BY 1, 2, 3, 4, 5
"""

IDLE_INSERT = f"""
INSERT INTO usage_rollups (hour, team, feature, model, backend, calls, errors, prompt_tokens,
    completion_tokens, token_cost_nusd, gpu_seconds, gpu_cost_nusd, idle_gpu_seconds, idle_cost_nusd)
SELECT hour, '', '', '', backend, 0, 0, 0, 0, 0, 0, 0,
    greatest(0, {GPUS_PER_BACKEND} * 3600 - sum(gpu_seconds)),
    round(greatest(0, {GPUS_PER_BACKEND} * 3600 - sum(gpu_seconds)) * {USD_PER_GPU_HOUR} / 3600 * 1e9)
FROM usage_rollups GROUP BY hour, backend
"""

# Parts split so that they add up to the totals exactly, as the engine's do.
TRACE_INSERT = """
INSERT INTO trace_costs (trace_id, team, feature, first_call_at, last_call_at, calls, retries, total_tokens,
    total_cost_nusd, amplification_tokens, amplification_cost, baseline_source, baseline_tokens,
    context_expansion_tokens, retries_tokens, tool_steps_tokens, safety_tokens, retrieval_tokens,
    other_tokens, baseline_cost_nusd, context_expansion_cost_nusd, retries_cost_nusd, tool_steps_cost_nusd,
    safety_cost_nusd, retrieval_cost_nusd, other_cost_nusd, closed_at)
SELECT trace_id, team, feature, first_at, last_at, calls, 0, tokens, cost,
    round(tokens::numeric / b_tok, 6), round(cost::numeric / b_cost, 6), 'generation',
    b_tok, (tokens - b_tok) / 2, 0, (tokens - b_tok) / 4, 0,
    tokens - b_tok - (tokens - b_tok) / 2 - (tokens - b_tok) / 4, 0,
    b_cost, (cost - b_cost) / 2, 0, (cost - b_cost) / 4, 0,
    cost - b_cost - (cost - b_cost) / 2 - (cost - b_cost) / 4, 0,
    last_at
FROM (
    SELECT trace_id, min(team) AS team, min(feature) AS feature, min(started_at) AS first_at,
        max(started_at) AS last_at, count(*) AS calls, sum(prompt_tokens + completion_tokens) AS tokens,
        sum(cost_nusd) AS cost,
        greatest(1, sum(prompt_tokens + completion_tokens) / (1 + abs(hashtext(trace_id)) % 25)) AS b_tok,
        greatest(1, sum(cost_nusd) / (1 + abs(hashtext(trace_id)) % 25)) AS b_cost
    FROM token_ledger WHERE trace_id >= :low AND trace_id < :high GROUP BY trace_id
) AS t
"""

# Hourly latency sketches in the stored form (finops.observability.sketch: bucket ceil(log_gamma(v)),
# values at or below MIN_VALUE counted as zeros), made in SQL because the latency job in Python would
# take minutes over 10M rows; the daily ones are then made by the job's own code from these.
SKETCH_INSERT = """
INSERT INTO latency_sketches (hour, team, feature, model, backend, metric, calls, sketch)
SELECT hour, team, feature, model, backend, metric, sum(n),
    '{"z":' || sum(CASE WHEN k IS NULL THEN n ELSE 0 END)
    || ',"k":[' || coalesce(string_agg(k::text, ',' ORDER BY k) FILTER (WHERE k IS NOT NULL), '')
    || '],"c":[' || coalesce(string_agg(n::text, ',' ORDER BY k) FILTER (WHERE k IS NOT NULL), '') || ']}'
FROM (
    SELECT date_trunc('hour', started_at) AS hour, team, feature, model, coalesce(backend, '') AS backend,
        m.metric, CASE WHEN m.v > :min_value THEN CAST(ceil(ln(m.v) / ln(:gamma)) AS int) END AS k,
        count(*) AS n
    FROM token_ledger
    CROSS JOIN LATERAL (VALUES ('total', latency_ms), ('ttft', ttft_ms), ('itl', itl_ms)) AS m(metric, v)
    WHERE status_code < 400 AND NOT client_disconnected AND m.v IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7
) AS buckets
GROUP BY 1, 2, 3, 4, 5, 6
"""

# The ledger jobs' watermarks at the newest row, as in a deployment whose jobs keep up: budget spend then
# reads the rollups for every whole hour and the ledger only after the rollups' cut.
JOBS_CAUGHT_UP = ("rollups", "latency_rollups", "traces", "attribution")

# Alerts for the Alerts page and the Overview's list: ALERTS budget alerts over the budgets (one per
# budget, threshold and month, going back in time), each with a Slack and an email delivery in a mix
# of states. Far more than a deployment keeps in a year; the pages read them newest first.
ALERTS = 5000
ALERT_INSERT = """
INSERT INTO budget_alerts (budget_id, budget_name, team, feature, model, basis, kind, threshold, notified,
    period_start, period_end, spend_nusd, amount_nusd, forecast_nusd, subject, created_at)
SELECT b.id, b.name, b.team, b.feature, b.model, b.basis, 'threshold',
    (ARRAY[0.5, 0.8, 1.0, 1.2])[1 + (i / n) % 4], true,
    :month - make_interval(months => CAST(i / (n * 4) AS int)),
    :month - make_interval(months => CAST(i / (n * 4) - 1 AS int)),
    b.monthly_nusd * (ARRAY[5, 8, 10, 12])[1 + (i / n) % 4] / 10, b.monthly_nusd,
    b.monthly_nusd, 'Budget ' || b.name || ' passed a threshold', :now - make_interval(mins => CAST(i AS int))
FROM generate_series(0, :alerts - 1) AS i
JOIN (SELECT row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS n, * FROM budgets) AS b
    ON b.k = i % b.n
"""
DELIVERY_INSERT = """
INSERT INTO alert_deliveries (source, source_id, channel, subject, text, html, slack_blocks, status, attempts,
    last_error, created_at, next_attempt_at, claimed_at, delivered_at)
SELECT 'budget', CAST(a.id AS text), c.channel, a.subject, a.subject, '<p>' || a.subject || '</p>', '[]',
    (ARRAY['delivered', 'delivered', 'delivered', 'failed', 'pending'])[1 + a.id % 5],
    1 + a.id % 3, CASE WHEN a.id % 5 = 3 THEN 'HTTP 500 from the webhook' END, a.created_at, a.created_at,
    NULL, CASE WHEN a.id % 5 < 3 THEN a.created_at END
FROM budget_alerts AS a CROSS JOIN (VALUES ('ops-slack'), ('finance-email')) AS c(channel)
"""


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def ledger_rows() -> int | None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
        if not exists:
            return None
        engine = create_engine(DB_URL)
        try:
            with engine.connect() as conn:
                return int(conn.scalar(text("SELECT count(*) FROM token_ledger")) or 0)
        finally:
            engine.dispose()
    finally:
        admin.dispose()


def generate(rows: int, days: int) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    upgrade(DB_URL)
    engine = create_engine(DB_URL)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    span_s = (end - start).total_seconds()
    with engine.begin() as conn:
        conn.execute(text("SET work_mem = '256MB'; SET timezone = 'UTC'"))
        for first in range(1, rows + 1, BATCH):
            last = min(rows, first + BATCH - 1)
            conn.execute(
                text(LEDGER_INSERT),
                {"start": start, "span_s": span_s, "rows": rows, "first": first, "last": last},
            )
            log(f"ledger: {last:,} / {rows:,} rows")
        conn.execute(text(ROLLUP_INSERT))
        conn.execute(text(IDLE_INSERT))
        log("usage_rollups: done")
        # Trace ids are 'tr<n>': cut the range by leading digit so each GROUP BY stays in memory.
        for digit in "123456789":
            # chr(ord("9") + 1) is ":", which sorts right after every "tr9..." id.
            conn.execute(text(TRACE_INSERT), {"low": f"tr{digit}", "high": f"tr{chr(ord(digit) + 1)}"})
        conn.execute(text(TRACE_INSERT), {"low": "tr0", "high": "tr1"})
        log("trace_costs: done")
        # The hourly trace rollup the Amplification page reads, as the traces job writes it.
        with Session(bind=conn) as session:
            recompute_range(session, start, end + timedelta(hours=1))
        log("trace_rollups: done")
        conn.execute(text(SKETCH_INSERT), {"gamma": GAMMA, "min_value": MIN_VALUE})
        log("latency_sketches: done")
        with Session(bind=conn) as session:
            daily = rebuild_daily_sketches(session, start, end + timedelta(hours=1))
        log(f"latency_daily_sketches: {daily:,} rows")
        last_id = int(conn.scalar(text("SELECT max(id) FROM token_ledger")) or 0)
        for job in JOBS_CAUGHT_UP:
            conn.execute(
                text(
                    "INSERT INTO job_state (name, state, runs, last_run_at) VALUES (:name, :state, 1, :now)"
                ),
                {"name": job, "state": json.dumps({"last_ledger_id": last_id, "gaps": []}), "now": end},
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with engine.connect() as conn:
        counts = {
            table: int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in ("token_ledger", "usage_rollups", "trace_costs", "latency_sketches")
        }
    engine.dispose()
    log(f"generated: {counts}")


def callbacks(client: Any) -> list[dict[str, Any]]:
    reply = client.get("/_dash-dependencies")
    assert reply.status_code == 200, reply.status_code
    return [d for d in reply.get_json() if d["inputs"][0]["id"] != "url"]


def outputs_of(dep: dict[str, Any]) -> Any:
    spec = dep["output"]
    if spec.startswith(".."):
        return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in spec[2:-2].split("...")]
    return dict(zip(("id", "property"), spec.rsplit(".", 1), strict=True))


def time_callbacks(client: Any, values: dict[str, Any], repeat: int) -> dict[str, tuple[float, float]]:
    results = {}
    for dep in callbacks(client):
        body = {
            "output": dep["output"],
            "outputs": outputs_of(dep),
            "inputs": [{**i, "value": values.get(i["id"])} for i in dep["inputs"]],
            "changedPropIds": [],
            "state": [],
        }
        samples = []
        for _ in range(repeat):
            began = time.perf_counter()
            reply = client.post("/_dash-update-component", json=body)
            samples.append((time.perf_counter() - began) * 1000)
            assert reply.status_code in (200, 204), (dep["output"], reply.status_code, reply.get_data()[:300])
        name = dep["output"].strip(".").split(".")[0]
        results[name] = (statistics.median(samples), max(samples))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the database when it has --rows rows")
    args = parser.parse_args()

    if not (args.reuse and ledger_rows() == args.rows):
        log(f"generating {args.rows:,} ledger rows over {args.days} days (not timed)")
        generate(args.rows, args.days)
    else:
        upgrade(DB_URL)  # a reused database gets the tables added since (migrations fill them)
    password = hash_password("bench")
    config = FinopsConfig.model_validate(
        {
            "database_url": DB_URL,
            "secret_key": "bench",
            # A budget per team, two per feature and a fleet-wide one on each basis: the Overview page
            # computes every budget's spend.
            "budgets": [
                *(
                    {"name": f"team-{t}", "scope": {"team": f"team-{t}"}, "monthly_usd": 500}
                    for t in range(8)
                ),
                {"name": "feature-1", "scope": {"feature": "feature-1"}, "monthly_usd": 100},
                {"name": "feature-2", "scope": {"feature": "feature-2"}, "monthly_usd": 100},
                {"name": "fleet-tokens", "monthly_usd": 5000},
                {"name": "fleet-gpu", "monthly_usd": 50000, "basis": "gpu"},
            ],
            "dashboard": {
                "users": [
                    {"name": "admin", "role": "admin", "password_hash": password},
                    {"name": "member", "role": "team", "team": "team-3", "password_hash": password},
                ]
            },
        }
    )
    # As the worker's budgets job would, within its first run.
    engine = create_engine(DB_URL)
    with unit_of_work(engine) as session:
        sync_config_budgets(session, config)
        if not session.scalar(text("SELECT count(*) FROM budget_alerts")):
            now = datetime.now(UTC)
            month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            session.execute(text(ALERT_INSERT), {"alerts": ALERTS, "month": month, "now": now})
            session.execute(text(DELIVERY_INSERT))
            log(f"alerts: {ALERTS:,} budget alerts, {2 * ALERTS:,} deliveries")
    engine.dispose()
    app = create_app(config)
    base = {
        "spend-by": "team",
        "spend-basis": "tokens",
        "amp-unit": "cost",
        "trace-id": "tr1234567",
        "lat-by": "model",
        "alerts-page": 1,
    }
    runs = {
        "admin, last 24 hours": ("admin", {**base, "f-period": "24h"}),
        "admin, last 7 days": ("admin", {**base, "f-period": "7d"}),
        "admin, last 30 days": ("admin", {**base, "f-period": "30d"}),
        "admin, 30 days, team filter": ("admin", {**base, "f-period": "30d", "f-team": "team-5"}),
        "team member, 30 days": ("member", {**base, "f-period": "30d"}),
    }
    report: dict[str, dict[str, tuple[float, float]]] = {}
    for label, (user, values) in runs.items():
        client = app.server.test_client()
        reply = client.post("/login", data={"username": user, "password": "bench"})
        assert reply.status_code == 302, reply.status_code
        time_callbacks(client, values, 1)  # warm the caches and the connection pool
        report[label] = time_callbacks(client, values, args.repeat)
    print(f"\n{args.rows:,} ledger rows; median / slowest of {args.repeat} calls, ms")
    names = sorted({name for results in report.values() for name in results})
    print(f"{'callback':<16}" + "".join(f"{label:>30}" for label in report))
    for name in names:
        cells = "".join(
            f"{report[label][name][0]:>19.0f} / {report[label][name][1]:>6.0f}  " for label in report
        )
        print(f"{name:<16}{cells}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": args.rows, "days": args.days, "ms": report}, indent=2))


if __name__ == "__main__":
    main()
