"""`finops latency`, `finops events` and `finops capacity` in a terminal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finops.cli import main
from finops.config import FinopsConfig
from finops.db import make_engine
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from tests.support.records import make_record


def test_terminal_reads(tmp_path, capsys, monkeypatch):
    from tests.support.databases import fresh_sqlite

    with fresh_sqlite(tmp_path) as url:
        monkeypatch.setenv("FINOPS_DATABASE_URL", url)
        now = datetime.now(UTC)
        engine = make_engine(url)
        insert_records(
            engine,
            [make_record(started_at=now - timedelta(minutes=1), latency_ms=100.0 + i) for i in range(10)]
            + [make_record(started_at=now - timedelta(minutes=1), finish_reason="length", feature="rag")],
        )
        run_job(engine, FinopsConfig(database_url=url), "latency_rollups")
        engine.dispose()

        assert main(["latency", "--by", "feature", "--metric", "total"]) == 0
        out = capsys.readouterr().out
        assert "autocomplete" in out and "total" in out and "P90 MS" in out
        assert main(["events", "--team", "search"]) == 0
        out = capsys.readouterr().out
        assert "rag" in out and "truncated" in out
        assert main(["capacity"]) == 0
        assert "no scrapes yet" in capsys.readouterr().out
        assert main(["latency", "--from", "2026-11-02", "--to", "2026-11-01"]) == 2
        assert "--to must be after --from" in capsys.readouterr().err
