"""The load generator against a real stand-in and a real proxy writing to a fresh Postgres ledger."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from finops.loadgen.config import LoadConfig, parse_mix
from finops.loadgen.runner import run_load
from tests.support.stack import ProxyStack, backend, start_sim

# `finops loadgen` through this package's own register(), so the test does not depend on finops/cli.py.
SHIM = (
    "import argparse, sys\n"
    "from finops.loadgen.cli import register\n"
    "parser = argparse.ArgumentParser(prog='finops')\n"
    "register(parser.add_subparsers(dest='command', required=True))\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


@pytest.fixture
def stack(tmp_path: Path, pg_url: str) -> Iterator[ProxyStack]:
    sim, sim_url = start_sim(tmp_path, ("llama-8b", "qwen-1b"), "--ttft-ms", "5")
    proxy = ProxyStack(tmp_path, pg_url, [backend("a", sim_url)])
    try:
        yield proxy.start()
    finally:
        proxy.close()
        sim.stop()


def test_every_answered_call_is_in_the_ledger_with_its_trace_and_tags(stack: ProxyStack, tmp_path: Path):
    config = LoadConfig(
        proxy_url=stack.url,
        mix=parse_mix("chat,rag,multiturn,agent,safety"),
        queries=40,
        rps=0,
        concurrency=8,
        seed=11,
        retry_rate=0.15,
        failure_rate=0.08,
        run_id="e2e",
    )
    report = run_load(config)
    path = tmp_path / "calls.json"
    report.write_json(path)
    data = json.loads(path.read_text())
    calls = data["calls"]
    summary = data["summary"]

    assert summary["queries"] == {"started": 40, "completed": 40, "abandoned": 0, "cancelled": 0}
    assert summary["calls"] == len(calls) > 80
    assert set(data["models"]) == {"llama-8b", "qwen-1b"}
    assert {c["pipeline"] for c in calls} == {"chat", "rag", "multiturn", "agent", "safety"}
    assert {c["stage"] for c in calls} == {"generation", "retrieval", "rerank", "tool", "safety"}
    assert any(c["streamed"] for c in calls) and not all(c["streamed"] for c in calls)
    # Only the injected failures fail, and each is followed by its retry.
    assert all(c["status"] == (503 if c["injected_failure"] else 200) and c["request_id"] for c in calls)
    assert sum(c["injected_failure"] for c in calls) == sum(c["retry"] == "failure" for c in calls) > 0
    assert summary["errors"] == {"503": summary["injected_failures"]}

    ids = {c["request_id"] for c in calls}
    rows = stack.wait_rows(lambda found: ids <= {r["request_id"] for r in found}, timeout_s=15)
    by_id = {r["request_id"]: r for r in rows}
    for call in calls:
        row = by_id[call["request_id"]]
        assert (row["trace_id"], row["stage"], row["team"], row["feature"]) == (
            call["trace_id"],
            call["stage"],
            call["team"],
            call["feature"],
        ), call
        assert (row["status_code"], row["streamed"], row["model"]) == (
            call["status"],
            call["streamed"],
            call["model"],
        )
        assert row["endpoint"] == (
            "embeddings" if call["endpoint"] == "/v1/embeddings" else "chat.completions"
        )

    # Retries: by header, the ledger links the earlier call of the same trace; by hash, the bodies match.
    by_header = [c for c in calls if c["retry"] in ("header", "failure")]
    by_hash = [c for c in calls if c["retry"] == "hash"]
    assert by_header and by_hash
    for call in by_header:
        row = by_id[call["request_id"]]
        assert row["retry_of"] == call["retry_of"] is not None
        assert by_id[row["retry_of"]]["trace_id"] == row["trace_id"]
    for call in calls:
        if call["retry"] is None:
            continue
        index = calls.index(call)
        earlier = next(c for c in reversed(calls[:index]) if c["query"] == call["query"])
        assert by_id[earlier["request_id"]]["body_sha256"] == by_id[call["request_id"]]["body_sha256"]
    for call in by_hash:
        assert by_id[call["request_id"]]["retry_of"] is None

    # Realistic traces: several calls each, and prompts the proxy splits into context and history.
    per_trace = Counter(c["trace_id"] for c in calls)
    assert len(per_trace) == 40
    assert sum(count >= 3 for count in per_trace.values()) >= 10
    generation = defaultdict(list)
    for call in calls:
        if call["stage"] == "generation" and call["status"] == 200:
            generation[call["pipeline"]].append(by_id[call["request_id"]])
    assert all((r["prompt_context_tokens"] or 0) > 0 for r in generation["rag"])
    assert any((r["prompt_history_tokens"] or 0) > 0 for r in generation["multiturn"])
    assert any((r["prompt_context_tokens"] or 0) > 0 for r in generation["agent"])
    prompt_tokens = {r["prompt_tokens"] for rows in generation.values() for r in rows}
    assert len(prompt_tokens) > 20, "token counts vary"


def test_cli_stops_gently_on_ctrl_c_and_writes_its_json(stack: ProxyStack, tmp_path: Path):
    out = tmp_path / "calls.json"
    command = [sys.executable, "-c", SHIM, "loadgen", "--proxy", stack.url, "--rps", "20"]
    command += [
        "--team",
        "search:autocomplete,qa",
        "--team",
        "support:chatbot",
        "--json",
        str(out),
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stack.wait_rows(lambda rows: len(rows) >= 10, timeout_s=15)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "queries" in stdout and "calls by stage" in stdout
    data = json.loads(out.read_text())
    queries = data["summary"]["queries"]
    # The queries in flight were finished, not cut off.
    assert queries["cancelled"] == 0 and queries["started"] == queries["completed"] + queries["abandoned"]
    assert {c["team"] for c in data["calls"]} <= {"search", "support"}
    ids = {c["request_id"] for c in data["calls"]}
    stack.wait_rows(lambda rows: ids <= {r["request_id"] for r in rows})
    time.sleep(0.3)
    assert len(stack.rows()) == len(ids), "no call was made after the summary"


def test_cli_reports_an_unreachable_proxy(tmp_path: Path):
    command = [sys.executable, "-c", SHIM, "loadgen", "--proxy", "http://127.0.0.1:9", "--wait", "0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "GET http://127.0.0.1:9/v1/models failed" in result.stderr
    result = subprocess.run([*command, "--mix", "poetry=1"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "unknown pipeline" in result.stderr
