"""The monthly job writes last month's files once, complete, and only after the month is over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finops.config import ExportsConfig
from finops.db import make_engine, unit_of_work
from finops.exports.monthly import months_in
from finops.exports.service import ExportRequest, iter_export
from finops.jobs.registry import JOBS, run_job
from finops.ledger.store import insert_records
from tests.exports.support import END, calls, config_for

NOVEMBER = datetime(2026, 11, 1, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 1, tzinfo=UTC)


def test_last_months_files_are_written_once(db_url, tmp_path):
    folder = tmp_path / "exports"
    config = config_for(db_url, exports=ExportsConfig(folder=str(folder), billing_account_id="acct-7"))
    assert "exports" in JOBS and JOBS["exports"].every_s(config) == 3600
    engine = make_engine(db_url)
    try:
        insert_records(engine, calls())
        run_job(engine, config, "attribution", now=END + timedelta(minutes=10))

        too_early = run_job(engine, config, "exports", now=DECEMBER + timedelta(minutes=30))
        assert too_early.written == [] and not folder.exists()

        first = run_job(engine, config, "exports", now=DECEMBER + timedelta(hours=2))
        names = [
            "finops-focus-tokens-2026-11.csv",
            "finops-focus-gpu-2026-11.csv",
            "finops-ledger-2026-11.csv",
        ]
        assert first.written == names
        assert sorted(p.name for p in folder.iterdir()) == sorted(names)
        requests = [
            ExportRequest("focus", NOVEMBER, DECEMBER),
            ExportRequest("focus", NOVEMBER, DECEMBER, basis="gpu"),
            ExportRequest("ledger", NOVEMBER, DECEMBER),
        ]
        with unit_of_work(engine) as session:
            for name, req in zip(names, requests, strict=True):
                content = (folder / name).read_bytes()
                assert content == b"".join(iter_export(session, config, req))
                assert content.count(b"\n") > 1
        assert b"acct-7" in (folder / names[0]).read_bytes()

        (folder / names[2]).write_bytes(b"kept\n")
        again = run_job(engine, config, "exports", now=DECEMBER + timedelta(hours=3))
        assert again.written == [] and again.skipped == names
        assert (folder / names[2]).read_bytes() == b"kept\n"

        # By hand, for a range: rewritten.
        forced = run_job(engine, config, "exports", start=NOVEMBER, end=DECEMBER)
        assert forced.written == names and (folder / names[2]).read_bytes() != b"kept\n"
    finally:
        engine.dispose()


def test_months_in_a_range():
    assert months_in(NOVEMBER, DECEMBER) == [NOVEMBER]
    assert months_in(NOVEMBER + timedelta(days=3), datetime(2027, 2, 1, tzinfo=UTC)) == [
        DECEMBER,
        datetime(2027, 1, 1, tzinfo=UTC),
    ]
