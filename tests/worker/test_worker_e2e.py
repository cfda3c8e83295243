"""End to end: a real proxy writes the ledger, a real Celery worker (with beat) attributes and rolls it up.

Windows are one second and close at once, so calls still in flight when their first windows are
attributed land later and have those windows recomputed: the late-call path runs in every test here.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from sqlalchemy import Engine, text

from finops.attribution.models import GpuLedgerRow
from finops.cli import main
from finops.config import AttributionConfig, BackendConfig, FinopsConfig, load_config
from finops.db import make_engine, unit_of_work
from finops.jobs import state as job_state
from finops.jobs.registry import run_job
from finops.ledger.record import UsageRecord
from finops.ledger.store import insert_records
from finops.rollups.models import UsageRollupRow
from tests.support.databases import fresh_sqlite
from tests.support.records import make_record
from tests.support.stack import ProxyStack, backend, start_sim
from tests.worker.support import (
    EPOCH,
    Finops,
    check_all,
    check_gpu_ledger,
    job_states,
    snapshot,
    stop_all,
    table_content,
    wait_settled,
)

CALLS = 32
FAST_JOBS = {
    "attribution": {"window_s": 1, "close_delay_s": 0},
    "jobs": {"attribution_every_s": 1, "rollups_every_s": 1},
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database of its own (9 to 15, whichever is empty), flushed afterwards."""
    numbers = list(range(9, 16))
    random.shuffle(numbers)
    for number in numbers:
        client = redis.Redis(host="127.0.0.1", port=6379, db=number)
        if client.dbsize() == 0:
            break
        client.close()
    else:
        pytest.fail("no empty Redis database among 9 to 15")
    try:
        yield f"redis://127.0.0.1:6379/{number}"
    finally:
        client.flushdb()
        client.close()


def drive(proxy: ProxyStack, calls: int = CALLS) -> list[int]:
    """Overlapping calls, streamed and not, on both models, for two teams and two features, a few of
    them failing: started 25 ms apart, each 0.1 to 1 s long, so they span several windows."""

    def call(i: int) -> int:
        time.sleep(i * 0.025)
        headers = {
            "X-FinOps-Team": ("search", "ads")[i % 2],
            "X-FinOps-Feature": ("autocomplete", "summary")[i // 2 % 2],
            "X-Sim-TTFT-Ms": str(100 + i * 137 % 600),
            "X-Sim-ITL-Ms": "15",
            "X-Sim-Output-Tokens": str(3 + i % 20),
        }
        if i % 11 == 5:
            headers["X-Sim-Error-Status"] = "500"
        body: dict[str, Any] = {
            "model": ("llama-8b", "qwen-1b")[i // 4 % 2],
            "messages": [{"role": "user", "content": "tell me more " * (1 + i % 7)}],
            "max_tokens": 64,
        }
        with httpx.Client(base_url=proxy.base_url, headers=headers, timeout=30) as client:
            if i % 3 == 0:
                with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
                    response.read()
                    return response.status_code
            return client.post("/chat/completions", json=body).status_code

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(call, range(calls)))


def run_stack(tmp_path: Path, db_url: str, worker_args: list[list[str]], **config: Any) -> None:
    """Sims, a proxy and the given workers on one config; traffic; then every invariant, on a state in
    which the workers have caught up with all of it. Everything started is stopped, whatever fails."""
    with ExitStack() as cleanup:
        sim1, url1 = start_sim(tmp_path, ("llama-8b", "qwen-1b"))
        cleanup.callback(sim1.stop)
        sim2, url2 = start_sim(tmp_path, ("llama-8b", "qwen-1b"))
        cleanup.callback(sim2.stop)
        backends = [
            backend("gpu-a", url1),
            backend("gpu-b", url2, gpus=2, usd_per_gpu_hour="3.0"),
            # Serves a model nobody asks for: no calls, so no GPU rows at all.
            backend("gpu-unused", url1, models=["unused-model"]),
        ]
        proxy = ProxyStack(tmp_path, db_url, backends, **FAST_JOBS, **config)
        cleanup.callback(proxy.close)
        settings = yaml.safe_load(proxy.config_path.read_text())
        workers: list[Finops] = []
        cleanup.callback(stop_all, workers)  # runs first: SIGTERM, then SIGKILL after 15 s
        for number, args in enumerate(worker_args):
            # Each worker its own beat schedule file (two beats could not share one).
            worker_settings = {
                **settings.get("worker", {}),
                "beat_schedule_file": str(tmp_path / f"beat-{number}"),
            }
            path = tmp_path / f"worker-{number}.yaml"
            path.write_text(yaml.safe_dump({**settings, "worker": worker_settings}))
            log = tmp_path / f"worker-{number}.log"
            workers.append(Finops(["worker", "--config", str(path), *args], log, cwd=tmp_path))
        proxy.start()
        statuses = drive(proxy)
        assert sorted(set(statuses)) == [200, 500], statuses
        proxy.wait_rows(lambda rows: len(rows) == CALLS)

        def logs() -> str:
            return "\n".join(f"--- worker {w.args}:\n{w.log()}" for w in workers)

        for worker in workers:
            assert worker.popen.poll() is None, f"a worker exited early:\n{logs()}"
        summary = wait_settled(proxy.engine, load_config(proxy.config_path), timeout_s=60, log=logs)

        assert summary.calls_with_gpu_rows == CALLS  # failed calls held a GPU slot too
        assert summary.totals["calls"] == CALLS
        assert summary.totals["errors"] == statuses.count(500)
        assert summary.totals["gpu_cost_nusd"] > 0 and summary.totals["token_cost_nusd"] > 0
        with snapshot(proxy.engine) as conn:
            used = {row[0] for row in table_content(conn, GpuLedgerRow)}
        assert used == {"gpu-a", "gpu-b"}  # gpu-unused had no call, so no rows
        for worker in workers:  # every worker took a share of the runs
            assert "finops.worker: job " in worker.log(tail=10**7), logs()


def test_workers_on_redis_attribute_and_roll_up_proxy_calls(tmp_path, pg_url, redis_url):
    """Production's shape: one beat, two workers (a prefork pool of two, and a solo pool) sharing one
    Redis queue, so the two jobs run side by side in different processes."""
    run_stack(
        tmp_path,
        pg_url,
        [["--beat", "--pool", "prefork", "--concurrency", "2"], ["--pool", "solo"]],
        broker_url=redis_url,
        worker={"broker_dir": str(tmp_path / "unused-broker")},
    )
    assert not (tmp_path / "unused-broker").exists()


def test_a_worker_on_the_embedded_broker_with_sqlite(tmp_path):
    with fresh_sqlite(tmp_path) as sqlite_url:
        run_stack(
            tmp_path,
            sqlite_url,
            [["--beat", "--pool", "solo"]],
            worker={"broker_dir": str(tmp_path / "broker")},
        )
    assert (tmp_path / "broker" / "queue").is_dir()  # the messages went through the embedded broker


# --- the same job run by several processes at once -----------------------------------------------------


def test_job_runs_started_together_never_double_rows(tmp_path, db_url):
    """Rounds of three ``finops jobs run`` processes (attribution twice, rollups) released together
    from behind the jobs' own lock, with new and late calls between rounds: no row is ever written twice,
    the invariants hold after every round, and recomputing the whole range gives the very same tables."""
    config = FinopsConfig(
        database_url=db_url,
        backends=[
            BackendConfig(name="gpu-a", url="http://127.0.0.1:9", models=["m"], usd_per_gpu_hour="2.5"),
            BackendConfig(name="gpu-b", url="http://127.0.0.1:9", models=["m"], gpus=4, usd_per_gpu_hour="1"),
        ],
        attribution=AttributionConfig(window_s=1, close_delay_s=0),
    )
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    engine = make_engine(db_url)
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=6)

    def calls(round_: int) -> list[UsageRecord]:
        # Every call ends in a window that is already closed, so each run can attribute all of it.
        closed = datetime.now(UTC).replace(microsecond=0)
        span = (closed - base) / 8
        made = [
            make_record(
                backend=("gpu-a", "gpu-b")[i % 2],
                team=f"team-{i % 3}",
                started_at=base + span * i + timedelta(microseconds=round_ * 1000 + i),
                ended_at=base + span * (i + 2.5),
                prompt_tokens=10 + i,
                completion_tokens=round_ + i,
            )
            for i in range(6)
        ]
        # Late: began with the first window (attributed in an earlier round when there was one).
        made.append(
            make_record(backend="gpu-a", started_at=base + timedelta(microseconds=round_), ended_at=closed)
        )
        return made

    started: list[Finops] = []
    try:
        for round_ in range(3):
            insert_records(engine, calls(round_))
            with unit_of_work(engine) as session:
                job_state.claim(session, job_state.LEDGER_LOCK, datetime.now(UTC))
                runs = [
                    Finops(["jobs", "run", name, "--config", str(path)], tmp_path / f"run-{round_}-{n}.log")
                    for n, name in enumerate(["attribution", "attribution", "rollups"])
                ]
                started += runs
                wait_for_waiters(engine, runs)
            codes = [run.wait(60) for run in runs]
            assert codes == [0] * len(runs), "\n".join(run.log() for run in runs)
            with snapshot(engine) as conn:
                check_gpu_ledger(conn, config)

        run_job(engine, config, "rollups")  # the last runs may have ended with an attribution
        with snapshot(engine) as conn:
            summary = check_all(conn, config)
            before = {m.__tablename__: table_content(conn, m) for m in (GpuLedgerRow, UsageRollupRow)}
            until = min(job_states(conn)["attribution"]["attributed_until_us"].values())
        assert summary.calls_with_gpu_rows == 3 * 7
        end = (EPOCH + timedelta(microseconds=until)).isoformat()
        recompute = ["--config", str(path), "--from", base.isoformat(), "--to", end]
        assert main(["jobs", "run", "attribution", *recompute]) == 0
        assert main(["jobs", "run", "rollups", *recompute]) == 0
        with snapshot(engine) as conn:
            after = {m.__tablename__: table_content(conn, m) for m in (GpuLedgerRow, UsageRollupRow)}
            check_all(conn, config)
        assert after == before
    finally:
        stop_all(started)
        engine.dispose()


def wait_for_waiters(engine: Engine, runs: list[Finops], timeout_s: float = 30.0) -> None:
    """Until every run waits on the lock this test holds: Postgres lists them as waiting; on SQLite they
    sleep in the busy handler unseen, but a run that has the database file open is at the lock."""
    deadline = time.monotonic() + timeout_s
    sqlite_file = engine.url.database if engine.dialect.name == "sqlite" else None
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if sqlite_file is not None:
                waiting = sum(_has_open(run.popen.pid, Path(sqlite_file).resolve()) for run in runs)
            else:
                waiting = conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
                conn.rollback()
            if waiting >= len(runs):
                return
            exited = [run for run in runs if run.popen.poll() is not None]
            assert not exited, f"a run ended while the lock was held:\n{exited[0].log()}"
            time.sleep(0.02)
    raise AssertionError(f"fewer than {len(runs)} job runs ever waited on the lock")


def _has_open(pid: int, path: Path) -> bool:
    try:
        return any(Path(fd).resolve() == path for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # the process is gone, or a descriptor closed under us
        return False
