"""End to end, every piece real: ``finops loadgen`` -> proxy -> stand-in -> ledger (Postgres) -> a Celery
worker with beat running the scheduled ``traces`` job -> ``trace_costs`` -> ``finops traces`` commands.

Every expectation comes from outside the traces engine: totals from the ledger rows, retries and
pipelines from what the load generator says it sent (its ``--json`` file).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import select

from finops.ledger.models import TokenLedgerRow
from finops.loadgen import LoadConfig, run_load
from finops.traces.models import BREAKDOWN_PARTS, TraceCostRow
from tests.support.stack import ProxyStack, backend, start_sim
from tests.worker.support import Finops, snapshot, stop_all

QUERIES = 25
# Seed 5 with these rates gives all five pipelines, injected failures and both kinds of repeat
# (identical body, X-FinOps-Retry-Of): the fault draws depend only on the seed, never on the answers.
SEED = 5
RETRY_RATE = 0.15
FAILURE_RATE = 0.1
SETTLE_S = 60.0


def read_state(proxy: ProxyStack) -> tuple[dict[str, list[Any]], dict[str, TraceCostRow]]:
    """The ledger rows by trace and the closed traces, read from one committed state of the database
    (the worker replaces a trace's row while we read)."""
    with snapshot(proxy.engine) as conn:
        ledger: dict[str, list[Any]] = defaultdict(list)
        for row in conn.execute(select(TokenLedgerRow)):
            ledger[row.trace_id].append(row)
        traces = {row.trace_id: row for row in conn.execute(select(TraceCostRow))}
    return dict(ledger), traces


def cli(config: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "finops.cli", "traces", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"finops traces {' '.join(args)}: {result.returncode}\n{result.stderr}"
    return result.stdout


def counts_as_retry(call: dict[str, Any]) -> bool:
    """Whether finops counts a call the load generator sent as a retry (finops.traces.retries):

    - every failed call (the injected 503s, whose own ``retry`` is null);
    - a repeat of a call that had delivered (``retry`` "hash": same body; "header": X-FinOps-Retry-Of);
    - but not ``retry`` "failure": the successful retry of an injected failure repeats only a failed
      attempt, so it is the attempt that delivered.
    """
    return call["status"] != 200 or call["retry"] in ("hash", "header")


def test_worker_closes_loadgen_traces_with_exact_totals_and_breakdowns(tmp_path: Path, pg_url: str):
    with ExitStack() as cleanup:
        sim, sim_url = start_sim(tmp_path, ("llama-8b", "qwen-1b"), "--ttft-ms", "5", "--itl-ms", "1")
        cleanup.callback(sim.stop)
        proxy = ProxyStack(
            tmp_path,
            pg_url,
            [backend("gpu-a", sim_url)],
            jobs={"traces_every_s": 1, "attribution_every_s": 3600, "rollups_every_s": 3600},
            traces={"quiet_s": 1},
            worker={"broker_dir": str(tmp_path / "broker"), "beat_schedule_file": str(tmp_path / "beat")},
        )
        cleanup.callback(proxy.close)
        worker = Finops(
            ["worker", "--config", str(proxy.config_path), "--beat", "--pool", "solo"],
            tmp_path / "worker.log",
            cwd=tmp_path,
        )
        cleanup.callback(stop_all, [worker])  # runs first: SIGTERM, then SIGKILL after 15 s
        proxy.start()

        # -- traffic: the full mix, with injected failures and repeats --------------------------------
        report = run_load(
            LoadConfig(
                proxy_url=proxy.url,
                queries=QUERIES,
                rps=0,
                concurrency=8,
                seed=SEED,
                retry_rate=RETRY_RATE,
                failure_rate=FAILURE_RATE,
                run_id="e2e-traces",
            )
        )
        report.write_json(tmp_path / "calls.json")
        data = json.loads((tmp_path / "calls.json").read_text())
        calls = data["calls"]
        assert data["summary"]["queries"]["completed"] == QUERIES, data["summary"]
        assert all(c["request_id"] and c["status"] == (503 if c["injected_failure"] else 200) for c in calls)
        assert {c["pipeline"] for c in calls} == {"chat", "rag", "multiturn", "agent", "safety"}
        assert {c["model"] for c in calls} == {"llama-8b", "qwen-1b"}
        kinds = Counter(c["retry"] for c in calls)
        assert kinds["hash"] and kinds["header"] and kinds["failure"], kinds
        assert sum(c["injected_failure"] for c in calls) == kinds["failure"]

        by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for call in calls:
            by_trace[call["trace_id"]].append(call)
        assert len(by_trace) == QUERIES
        ids = {c["request_id"] for c in calls}
        proxy.wait_rows(lambda rows: ids <= {r["request_id"] for r in rows}, timeout_s=15)

        # -- wait until the scheduled job has closed every trace with all of its calls -----------------
        deadline = time.monotonic() + SETTLE_S
        while True:
            assert worker.popen.poll() is None, f"the worker exited:\n{worker.log()}"
            ledger, traces = read_state(proxy)
            waiting = [t for t in by_trace if t not in traces or traces[t].calls != len(ledger.get(t, ()))]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(waiting)} of {len(by_trace)} traces not closed within {SETTLE_S} s, "
                    f"e.g. {waiting[:3]}; worker log:\n{worker.log()}"
                )
            time.sleep(0.2)
        # Closed by the scheduled job in the worker (nothing else runs it); it logs just after committing.
        logged = time.monotonic() + 5
        while "finops.worker: job traces:" not in worker.log(tail=10**7):
            assert time.monotonic() < logged, f"the worker never logged a traces run:\n{worker.log()}"
            time.sleep(0.1)

        # -- every trace against its ledger rows and the load generator's record -----------------------
        assert set(ledger) == set(traces) == set(by_trace)
        for trace_id, sent in by_trace.items():
            rows, trace = ledger[trace_id], traces[trace_id]
            where = f"trace {trace_id} ({sent[0]['pipeline']})"
            assert {r.request_id for r in rows} == {c["request_id"] for c in sent}, where
            assert trace.calls == len(rows) == len(sent), where
            assert (trace.team, trace.feature) == (sent[0]["team"], sent[0]["feature"]), where
            assert trace.total_tokens == sum(r.prompt_tokens + r.completion_tokens for r in rows), where
            assert trace.total_cost_nusd == sum(r.cost_nusd for r in rows), where
            parts_tokens = {p: getattr(trace, f"{p}_tokens") for p in BREAKDOWN_PARTS}
            parts_cost = {p: getattr(trace, f"{p}_cost_nusd") for p in BREAKDOWN_PARTS}
            assert all(v >= 0 for v in (*parts_tokens.values(), *parts_cost.values())), (where, parts_tokens)
            assert sum(parts_tokens.values()) == trace.total_tokens, (where, parts_tokens)
            assert sum(parts_cost.values()) == trace.total_cost_nusd, (where, parts_cost)
            repeated = {c["request_id"] for c in sent if counts_as_retry(c)}
            assert trace.retries == len(repeated), (where, trace.retries, sent)
            # Retry tokens are exactly those of the failed calls and the delivered repeats.
            assert trace.retries_tokens == sum(
                r.prompt_tokens + r.completion_tokens for r in rows if r.request_id in repeated
            ), where
            pipeline = sent[0]["pipeline"]
            if pipeline == "rag":
                assert trace.retrieval_tokens > 0, (where, parts_tokens)
                assert trace.context_expansion_tokens > 0, (where, parts_tokens)
            if pipeline == "safety":
                assert trace.safety_tokens > 0, (where, parts_tokens)
            if pipeline == "agent":
                assert trace.tool_steps_tokens > 0, (where, parts_tokens)
            if any(c["stage"] == "generation" and c["status"] == 200 for c in sent):
                assert trace.baseline_source == "generation", where
                assert trace.amplification_tokens is not None and trace.amplification_tokens >= 1, where

        # -- the commands read the same traces ----------------------------------------------------------
        features = Counter(sent[0]["feature"] for sent in by_trace.values())
        stats = cli(proxy.config_path, "stats")
        counted = {line.split()[0]: int(line.split()[1]) for line in stats.splitlines()[1:] if line.strip()}
        assert counted == dict(features), stats
        top = cli(proxy.config_path, "top", "--limit", str(QUERIES))
        assert all(trace_id in top for trace_id in by_trace), top
        assert all(feature in top for feature in features), top
