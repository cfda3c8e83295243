"""The attribution and rollup jobs through ``run_job`` (what beat, the worker and the CLI all call), on
SQLite and Postgres, at injected times: late calls, reruns, idle backends, and ``finops jobs``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, insert, select

from finops.attribution.models import GpuLedgerRow
from finops.cli import main
from finops.config import AttributionConfig, BackendConfig, FinopsConfig, JobsConfig
from finops.db import make_engine
from finops.jobs.registry import JOBS, run_job
from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import UsageRecord
from finops.ledger.store import insert_records
from finops.rollups.models import RollupDirtyHourRow, UsageRollupRow
from tests.support.records import make_record
from tests.worker.support import check_all, snapshot, table_content

# Ten seconds before an hour ends: windows and calls on both sides of the hour boundary.
T0 = datetime(2026, 3, 1, 9, 59, 50, tzinfo=UTC)
HOUR_9 = datetime(2026, 3, 1, 9, tzinfo=UTC)
HOUR_10 = datetime(2026, 3, 1, 10, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def config_for(db_url: str, idle_backend: bool = True) -> FinopsConfig:
    backends = [
        BackendConfig(name="gpu-a", url="http://127.0.0.1:9", models=["llama-8b"], usd_per_gpu_hour="2.0"),
        BackendConfig(
            name="gpu-b", url="http://127.0.0.1:9", models=["qwen-1b"], gpus=2, usd_per_gpu_hour="3"
        ),
    ]
    if idle_backend:
        backends.append(
            BackendConfig(name="gpu-idle", url="http://127.0.0.1:9", models=["other"], gpus="0.5")
        )
    return FinopsConfig(
        database_url=db_url, backends=backends, attribution=AttributionConfig(window_s=1, close_delay_s=0)
    )


def call(start_s: float, length_s: float, backend: str = "gpu-a", **extra: Any) -> UsageRecord:
    prompt, completion = extra.pop("tokens", (100, 20))
    values: dict[str, Any] = dict(
        started_at=at(start_s),
        ended_at=at(start_s + length_s),
        backend=backend,
        model="llama-8b" if backend == "gpu-a" else "qwen-1b",
        requested_model="llama-8b" if backend == "gpu-a" else "qwen-1b",
        prompt_tokens=prompt,
        completion_tokens=completion,
        prompt_cost_nusd=prompt * 100,
        completion_cost_nusd=completion * 200,
        cost_nusd=prompt * 100 + completion * 200,
    )
    values.update(extra)
    return make_record(**values)


def first_calls() -> list[UsageRecord]:
    return [
        call(0.25, 1.5, team="search", feature="autocomplete"),
        call(1.0, 2.5, team="ads", feature="ranking", tokens=(400, 80)),
        call(3.2, 0.4, team="search", feature="summary", status_code=500, error_type="upstream_error"),
        # Never reached a GPU: billed for tokens (none), no GPU rows.
        call(
            4.0,
            0.01,
            team="ads",
            feature="ranking",
            tokens=(0, 0),
            status_code=502,
            error_type="upstream_unreachable",
        ),
        call(0.5, 7.0, backend="gpu-b", team="search", feature="autocomplete", tokens=(1000, 300)),
        call(2.0, 1.0, backend="gpu-b", team="ads", feature="ranking"),
        # Across the hour boundary (10:00:00 is at(10)).
        call(8.5, 3.0, backend="gpu-b", team="ads", feature="ranking", tokens=(50, 500)),
    ]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def run_both(engine: Engine, config: FinopsConfig, now: datetime) -> None:
    run_job(engine, config, "attribution", now=now)
    run_job(engine, config, "rollups", now=now)


def tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with snapshot(engine) as conn:
        return {
            model.__tablename__: table_content(conn, model)
            for model in (GpuLedgerRow, UsageRollupRow, RollupDirtyHourRow)
        }


def checked(engine: Engine, config: FinopsConfig):
    with snapshot(engine) as conn:
        return check_all(conn, config)


def gpu_of(
    engine: Engine, backend: str, request_id: str | None = None
) -> dict[datetime, tuple[Decimal, int]]:
    """One backend's rows of one call (or, by default, its idle rows): window start -> (GPU-s, nano-USD)."""
    g = GpuLedgerRow
    match = g.request_id.is_(None) if request_id is None else g.request_id == request_id
    with snapshot(engine) as conn:
        rows = conn.execute(
            select(g.window_start, g.gpu_seconds, g.cost_nusd).where(g.backend == backend, match)
        )
        return {start: (Decimal(seconds), cost) for start, seconds, cost in rows}


def rollup(engine: Engine, hour: datetime, team: str, backend: str) -> dict[str, Any]:
    r = UsageRollupRow
    with snapshot(engine) as conn:
        rows = conn.execute(select(r).where(r.hour == hour, r.team == team, r.backend == backend)).all()
    assert len(rows) == 1, rows
    return dict(rows[0]._mapping)


def seconds_of(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / 10**6


def rows_of(engine: Engine, backend: str) -> list[tuple[Any, ...]]:
    return [row for row in tables(engine)["gpu_ledger"] if row[0] == backend]


def test_a_late_call_gets_its_windows_recomputed_and_their_hours_rolled_up_again(engine, db_url):
    config = config_for(db_url)
    insert_records(engine, first_calls())
    run_both(engine, config, now=at(15))
    before = checked(engine, config)
    assert before.windows == 2 * 15  # gpu-a and gpu-b from their first call's window to 10:00:05
    idle_before = gpu_of(engine, "gpu-a")
    hour_9_before = rollup(engine, HOUR_9, "", "gpu-a")
    hour_10_before = rollup(engine, HOUR_10, "", "gpu-a")
    gpu_b_before = rows_of(engine, "gpu-b")

    # A long stream on gpu-a over windows already attributed, written to the ledger only now.
    late = call(5.3, 6.4, team="late-team", feature="stream", tokens=(300, 900))
    insert_records(engine, [late])
    run_both(engine, config, now=at(15))
    after = checked(engine, config)  # every invariant still holds, and the late call has rows

    assert after.windows == before.windows
    late_gpu = gpu_of(engine, "gpu-a", late.request_id)
    assert sorted(late_gpu) == [at(s) for s in range(5, 12)]
    idle_after = gpu_of(engine, "gpu-a")
    assert idle_after.keys() == idle_before.keys()
    for window, (seconds, cost) in idle_before.items():
        if at(5) <= window < at(12):
            # Nothing else ran on gpu-a then: the late call takes exactly the time idle had, and its cost.
            covered = min(window + timedelta(seconds=1), late.ended_at) - max(window, late.started_at)
            assert late_gpu[window][0] == seconds_of(covered)
            assert idle_after[window][0] == seconds - seconds_of(covered)
            assert idle_after[window][1] + late_gpu[window][1] == cost
            assert idle_after[window][1] < cost
        else:
            assert idle_after[window] == (seconds, cost)
    assert rows_of(engine, "gpu-b") == gpu_b_before  # another backend's rows are left alone

    # Both hours changed: idle went down by exactly what the late team got; tokens count in hour 9.
    hour_9_late = rollup(engine, HOUR_9, "late-team", "gpu-a")
    hour_10_late = rollup(engine, HOUR_10, "late-team", "gpu-a")
    assert (hour_9_late["calls"], hour_9_late["completion_tokens"]) == (1, 900)
    assert hour_9_late["token_cost_nusd"] == late.cost_nusd
    assert hour_10_late["calls"] == 0 and hour_10_late["gpu_seconds"] == Decimal("1.7")
    assert hour_9_late["gpu_seconds"] == Decimal("4.7")
    hour_9_after = rollup(engine, HOUR_9, "", "gpu-a")
    hour_10_after = rollup(engine, HOUR_10, "", "gpu-a")
    assert hour_9_after["idle_gpu_seconds"] == hour_9_before["idle_gpu_seconds"] - Decimal("4.7")
    assert hour_10_after["idle_gpu_seconds"] == hour_10_before["idle_gpu_seconds"] - Decimal("1.7")
    assert hour_9_after["idle_cost_nusd"] + hour_9_late["gpu_cost_nusd"] == hour_9_before["idle_cost_nusd"]


def test_running_the_jobs_again_at_the_same_time_changes_nothing(engine, db_url):
    config = config_for(db_url)
    insert_records(engine, first_calls())
    run_both(engine, config, now=at(12))
    first = tables(engine)
    assert first["gpu_ledger"] and first["usage_rollups"] and not first["rollup_dirty_hours"]
    run_both(engine, config, now=at(12))
    run_both(engine, config, now=at(12))
    assert tables(engine) == first
    # Later, only new windows are added: every earlier row stays as it was.
    run_both(engine, config, now=at(14))
    later = tables(engine)["gpu_ledger"]
    assert set(first["gpu_ledger"]) < set(later)
    assert {row[1] for row in set(later) - set(first["gpu_ledger"])} == {at(12), at(13)}
    checked(engine, config)


def test_a_backend_with_no_calls_gets_no_rows(engine, db_url):
    config = config_for(db_url)
    run_both(engine, config, now=at(5))
    assert tables(engine)["gpu_ledger"] == []  # an empty ledger: nothing at all
    insert_records(engine, first_calls())
    run_both(engine, config, now=at(12))
    run_both(engine, config, now=at(20))
    with snapshot(engine) as conn:
        backends = {row[0] for row in table_content(conn, GpuLedgerRow)}
        rolled = {row[4] for row in table_content(conn, UsageRollupRow)}
    assert backends == rolled == {"gpu-a", "gpu-b"}
    checked(engine, config)


# --- finops jobs ---------------------------------------------------------------------------------------


def write_config(tmp_path: Path, config: FinopsConfig) -> str:
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return str(path)


def jobs_run(config_path: str, *args: str) -> int:
    return main(["jobs", "run", "--config", config_path, *args])


def test_jobs_run_from_to_recomputes_a_range_to_the_same_rows(engine, db_url, tmp_path, capsys):
    config = config_for(db_url, idle_backend=False)
    path = write_config(tmp_path, config)
    insert_records(engine, first_calls())
    run_both(engine, config, now=at(15))
    first = tables(engine)

    # Wipe part of the GPU ledger and rollups, as an operator repairing a range would find them.
    with engine.begin() as conn:
        conn.execute(GpuLedgerRow.__table__.delete().where(GpuLedgerRow.window_start >= at(3)))
        conn.execute(UsageRollupRow.__table__.delete().where(UsageRollupRow.hour == HOUR_10))
    assert jobs_run(path, "attribution", "--from", at(0).isoformat(), "--to", "2026-03-01T10:00:05") == 0
    assert "attribution: AttributionResult(windows=30" in capsys.readouterr().out
    assert (
        jobs_run(path, "rollups", "--from", "2026-03-01T09:30:00+00:00", "--to", "2026-03-01T10:00:01Z") == 0
    )
    assert "rollups: RollupResult(hours=2" in capsys.readouterr().out
    repaired = tables(engine)
    assert repaired["gpu_ledger"] == first["gpu_ledger"]
    assert repaired["usage_rollups"] == first["usage_rollups"]
    checked(engine, config)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attribution", "--from", "2026-03-01T10:00:00"], "give both --from and --to, or neither"),
        (["attribution", "--to", "2026-03-01T10:00:00"], "give both --from and --to, or neither"),
        (
            ["rollups", "--from", "2026-03-01T10:00:00", "--to", "2026-03-01T09:00:00"],
            "--to must be after --from",
        ),
        (
            ["attribution", "--from", "2026-03-01T10:00:00", "--to", "2026-03-01T10:00:00"],
            "--to must be after",
        ),
        (["nope"], "no job named 'nope'; known: attribution, backend_scrape, budgets, exports"),
    ],
)
def test_jobs_run_refuses_bad_ranges_and_unknown_jobs(tmp_path, capsys, args, message):
    url = f"sqlite:///{tmp_path / 'untouched.db'}"
    path = write_config(tmp_path, config_for(url))
    assert jobs_run(path, *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and not captured.out
    assert not (tmp_path / "untouched.db").exists()  # refused before touching the database


def test_jobs_run_refuses_a_time_that_is_not_iso_8601(tmp_path, capsys):
    path = write_config(tmp_path, config_for(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(SystemExit) as exit_:
        main(["jobs", "run", "attribution", "--config", path, "--from", "yesterday", "--to", "2026-03-01"])
    assert exit_.value.code == 2
    assert "not an ISO 8601 date or time: 'yesterday'" in capsys.readouterr().err


def test_jobs_list_lists_every_job_with_its_schedule(tmp_path, capsys):
    config = config_for("sqlite:///unused.db").model_copy(
        update={"jobs": JobsConfig(attribution_every_s=5, rollups_every_s=90, traces_every_s=30)}
    )
    assert main(["jobs", "list", "--config", write_config(tmp_path, config)]) == 0
    listed = {line.split()[0]: line.split()[1:4] for line in capsys.readouterr().out.splitlines()}
    assert set(listed) == set(JOBS)
    assert listed["attribution"] == ["every", "5", "s"]
    assert listed["rollups"] == ["every", "90", "s"]
    assert listed["traces"] == ["every", "30", "s"]


# --- regressions: bugs found by these tests, fixed ----------------------------------------------------


def test_jobs_run_from_to_gives_a_backend_with_no_calls_no_rows(engine, db_url, tmp_path, capsys):
    config = config_for(db_url)
    insert_records(engine, first_calls())
    run_both(engine, config, now=at(15))
    before = tables(engine)["gpu_ledger"]
    path = write_config(tmp_path, config)
    assert jobs_run(path, "attribution", "--from", at(0).isoformat(), "--to", at(15).isoformat()) == 0
    assert tables(engine)["gpu_ledger"] == before


def _insert_uncommitted(conn: Any, record: UsageRecord) -> None:
    conn.execute(insert(TokenLedgerRow), [record._asdict()])


def test_a_call_committed_after_a_higher_id_is_still_attributed(pg_url):
    engine = make_engine(pg_url)
    config = config_for(pg_url)
    try:
        slow, fast = call(2.0, 1.0, team="slow-writer"), call(1.0, 3.0, team="fast-writer")
        with engine.connect() as replica_1:
            _insert_uncommitted(replica_1, slow)  # takes the lower id, commits last
            insert_records(engine, [fast])
            run_both(engine, config, now=at(6))
            replica_1.commit()
        run_both(engine, config, now=at(8))
        assert gpu_of(engine, "gpu-a", slow.request_id)
        checked(engine, config)
    finally:
        engine.dispose()
