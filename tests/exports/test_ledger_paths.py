"""The ledger export's two paths (Postgres COPY, and Python batches on any database) give the same bytes."""

from __future__ import annotations

from datetime import timedelta

from finops.db import make_engine, unit_of_work
from finops.exports import ledger
from finops.exports.cells import encode_rows
from finops.exports.service import ExportRequest, iter_export, ledger_rows_batched
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from tests.exports.support import END, START, calls, config_for, parse

# Values that quoting, escaping and number formatting must all get right, in both paths.
AWKWARD = [
    {"team": 'quote"team', "feature": "comma,feature", "stage": "line\nbreak"},
    {"team": "\rcarriage", "feature": "-minus", "stage": "\\."},
    {"team": "@at", "feature": "+plus", "finish_reason": "", "error_type": "\ttab"},
    {
        "team": "ünïcödé",
        "feature": "emoji 🚀",
        "ttft_ms": 0.1 + 0.2,
        "itl_ms": 1e-7,
        "latency_ms": 123456.0625,
    },
]


def test_copy_and_batches_write_the_same_bytes(pg_url):
    engine = make_engine(pg_url)
    try:
        made = calls(23)
        for record, values in zip(made, AWKWARD, strict=False):
            made[made.index(record)] = record._replace(**values)
        insert_records(engine, made)
        config = config_for(pg_url)
        run_job(engine, config, "attribution", now=END + timedelta(minutes=10))
        req = ExportRequest("ledger", START, END)
        with unit_of_work(engine) as session:
            copied = b"".join(iter_export(session, config, req))
            # Small pages, so that paging itself is exercised (ties on started_at included).
            batched = encode_rows([ledger.COLUMNS]) + b"".join(
                ledger_rows_batched(session, req, batch_rows=4)
            )
        assert copied == batched
        rows = parse(copied)
        assert len(rows) == len(made)
        by_id = {r["request_id"]: r for r in rows}
        assert by_id[made[0].request_id]["stage"] == "line\nbreak"
        assert by_id[made[1].request_id]["team"] == "'\rcarriage"
        assert by_id[made[1].request_id]["feature"] == "'-minus"
        assert by_id[made[2].request_id]["error_type"] == "'\ttab"
        assert by_id[made[2].request_id]["finish_reason"] == ""
        assert by_id[made[3].request_id]["ttft_ms"] == "0.300"
    finally:
        engine.dispose()
