"""Benchmark of the finance exports on Postgres: by hand, not a test.

    python benchmarks/bench_export.py [--rows 1000000] [--keep-db] [--focus]

Creates a fresh ``finops_bench_export_<random>`` database, migrates it, and fills ``token_ledger`` with
``--rows`` calls spread over 30 days (one every 30 days / rows), one ``gpu_ledger`` row per call and an
idle row per backend per minute, all in SQL (``generate_series``), indexes included. Then runs
``finops export --format ledger --no-refresh -o FILE`` as a real subprocess and reports its wall time,
its peak memory (``ru_maxrss`` of that child, from ``os.wait4``), the file's size and rows, and checks
that the file's cost column adds up to the ledger's total. ``--focus`` also times a FOCUS export of the
same month with no rollups at all (the worst case: every hour aggregated from the ledgers).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from finops.migrate import upgrade

ADMIN_URL = os.environ.get("FINOPS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
START = "2026-10-01T00:00:00Z"
DAYS = 30

FILL_LEDGER = """
INSERT INTO token_ledger (
    request_id, trace_id, started_at, ended_at, team, feature, model, requested_model, backend, stage,
    endpoint, streamed, status_code, prompt_tokens, completion_tokens, cached_tokens, tokens_estimated,
    ttft_ms, itl_ms, latency_ms, prompt_cost_nusd, completion_cost_nusd, cost_nusd, priced, api_key_id,
    finish_reason, error_type, client_disconnected, body_sha256, retry_of)
SELECT
    'req-' || lpad(g::text, 10, '0'), 'trace-' || (g / 3)::text,
    CAST(:start AS timestamptz) + (g::bigint * :step_us) * interval '1 microsecond',
    CAST(:start AS timestamptz)
        + (g::bigint * :step_us + 800000 + (g % 5000) * 1000) * interval '1 microsecond',
    'team-' || (g % 20)::text, 'feature-' || (g % 12)::text, 'model-' || (g % 3)::text,
    'model-' || (g % 3)::text, 'gpu-' || (g % 3)::text, CASE WHEN g % 4 = 0 THEN 'generation' END,
    'chat.completions', g % 2 = 0, CASE WHEN g % 97 = 0 THEN 503 ELSE 200 END,
    100 + g % 4000, 1 + g % 700, 0, false, 35.25 + g % 100, 7.5, 800.0 + g % 5000,
    (100 + g % 4000) * 100, (1 + g % 700) * 200, (100 + g % 4000) * 100 + (1 + g % 700) * 200, true, NULL,
    'stop', NULL, false, md5(g::text) || md5((g + 1)::text), NULL
FROM generate_series(0, :rows - 1) AS g
"""

FILL_GPU = """
INSERT INTO gpu_ledger (backend, window_start, window_end, request_id, team, feature, model, gpu_seconds,
                        cost_nusd)
SELECT 'gpu-' || (g % 3)::text,
       date_trunc('minute', CAST(:start AS timestamptz) + (g::bigint * :step_us) * interval '1 microsecond'),
       date_trunc('minute', CAST(:start AS timestamptz) + (g::bigint * :step_us) * interval '1 microsecond')
           + interval '1 minute',
       'req-' || lpad(g::text, 10, '0'), 'team-' || (g % 20)::text, 'feature-' || (g % 12)::text,
       'model-' || (g % 3)::text, 0.8 + (g % 5000) / 1000.0, 444444 + g % 1000
FROM generate_series(0, :rows - 1) AS g
"""

FILL_IDLE = """
INSERT INTO gpu_ledger (backend, window_start, window_end, request_id, team, feature, model, gpu_seconds,
                        cost_nusd)
SELECT 'gpu-' || b::text, CAST(:start AS timestamptz) + m * interval '1 minute',
       CAST(:start AS timestamptz) + (m + 1) * interval '1 minute', NULL, NULL, NULL, NULL, 12.5, 6944444
FROM generate_series(0, :days * 1440 - 1) AS m, generate_series(0, 2) AS b
"""


def run_export(config: Path, args: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one `finops export` subprocess."""
    command = [sys.executable, "-m", "finops.cli", "export", "--config", str(config), "--no-refresh"]
    started = time.perf_counter()
    process = subprocess.Popen([*command, *args, "-o", str(out)], stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"export failed: {stderr}")
    return wall, usage.ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--focus", action="store_true", help="also time a FOCUS export with no rollups")
    args = parser.parse_args()

    name = f"finops_bench_export_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        engine = create_engine(url)
        step_us = DAYS * 86_400_000_000 // args.rows
        params = {"start": START, "step_us": step_us, "rows": args.rows, "days": DAYS}
        began = time.perf_counter()
        with engine.begin() as conn:
            # Plain indexes are dropped for the bulk load and built again after it (much faster than
            # maintaining them row by row); the schema the export reads is the same.
            indexes = conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes"
                    " WHERE tablename IN ('token_ledger', 'gpu_ledger') AND indexname LIKE 'ix_%'"
                )
            ).all()
            for index_name, _ in indexes:
                conn.execute(text(f'DROP INDEX "{index_name}"'))
            for sql in (FILL_LEDGER, FILL_GPU, FILL_IDLE):
                conn.execute(text(sql), params)
            for _, definition in indexes:
                conn.execute(text(definition))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            ledger_nusd = conn.execute(text("SELECT sum(cost_nusd) FROM token_ledger")).scalar_one()
        print(f"filled {args.rows:,} calls in {time.perf_counter() - began:.1f} s")
        engine.dispose()

        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "finops.yaml"
            config.write_text(f"database_url: {url}\n")
            out = Path(tmp) / "ledger.csv"
            span = ["--from", "2026-10-01", "--to", "2026-11-01"]
            wall, rss = run_export(config, ["--format", "ledger", *span], out)
            rows, cost = 0, Decimal(0)
            with out.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    rows += 1
                    cost += Decimal(row["cost_usd"])
            exact = cost.scaleb(9) == ledger_nusd
            print(
                f"ledger export: {rows:,} rows, {out.stat().st_size / 2**20:,.0f} MiB, {wall:.1f} s "
                f"({rows / wall:,.0f} rows/s), peak RSS {rss:.0f} MiB, cost adds up exactly: {exact}"
            )
            if args.focus:
                out = Path(tmp) / "focus.csv"
                wall, rss = run_export(config, ["--format", "focus", "--basis", "gpu", *span], out)
                lines = sum(1 for _ in out.open()) - 1
                print(
                    f"focus export (no rollups, every hour from the ledgers): {lines:,} rows, {wall:.1f} s, "
                    f"peak RSS {rss:.0f} MiB"
                )
            if not exact:
                raise SystemExit("the ledger export does not add up to the ledger")
    finally:
        if not args.keep_db:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            print(f"kept {url}")
        admin.dispose()


if __name__ == "__main__":
    main()
