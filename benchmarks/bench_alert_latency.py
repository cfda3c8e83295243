"""Alert latency: from the proxied call that crosses a budget threshold to the Slack webhook POST.

    python benchmarks/bench_alert_latency.py                  # default schedule (budgets every 60 s)
    python benchmarks/bench_alert_latency.py --trials 8 --budgets-every-s 10

Runs the real parts on loopback: a vLLM stand-in, the proxy, a Celery worker with beat (embedded
broker, SQLite in a temporary folder) and a local HTTP receiver standing in for Slack. Each trial is one
call for a team of its own whose budget it crosses; trials are spread over one schedule period so they
land at different phases of the job's schedule. Prints each trial's latency and the worst case; the
bound is the schedule period plus the ledger flush, the job's run and one webhook POST.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from finops.migrate import upgrade

WARMUP = "bench-warmup"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "finops.cli", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def receiver(received: dict[str, float]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = time.time()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            name = str(body.get("text", "")).split()[1]  # "Budget bench-3 passed 50%: ..."
            received.setdefault(name, at)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/services/T/B/X"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--budgets-every-s", type=float, default=60.0)
    parser.add_argument("--loglevel", default="WARNING", help="the worker's (its log: --worker-log)")
    parser.add_argument("--worker-log", default=None, help="copy the worker's log here")
    args = parser.parse_args()
    period = args.budgets_every_s
    received: dict[str, float] = {}
    server, hook_url = receiver(received)
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder:
        tmp = Path(folder)
        db_url = f"sqlite:///{tmp / 'finops.db'}"
        upgrade(db_url)
        sim_port, proxy_port = free_port(), free_port()
        names = [f"bench-{i}" for i in range(args.trials)]
        settings = {
            "database_url": db_url,
            "backends": [{"name": "sim", "url": f"http://127.0.0.1:{sim_port}", "models": ["llama-8b"]}],
            "prices": {"llama-8b": {"input_per_mtok": "0.10", "output_per_mtok": "0.20"}},
            "ledger": {"spool_dir": str(tmp / "spool")},
            "channels": {"hook": {"type": "slack", "webhook_url": hook_url}},
            # One cent-fraction budget per trial: its one call crosses 50%.
            "budgets": [
                {
                    "name": name,
                    "scope": {"team": name},
                    "monthly_usd": "0.000001",
                    "thresholds": [0.5],
                    "forecast": False,
                    "channels": ["hook"],
                }
                for name in [WARMUP, *names]
            ],
            "jobs": {"budgets_every_s": period},
            "worker": {"broker_dir": str(tmp / "broker"), "beat_schedule_file": str(tmp / "beat")},
        }
        config_path = tmp / "finops.yaml"
        config_path.write_text(yaml.safe_dump(settings))
        try:
            sim_args = ["sim", "--port", str(sim_port), "--model", "llama-8b"]
            processes.append(start(sim_args, tmp / "sim.log"))
            wait_http(f"http://127.0.0.1:{sim_port}/health")
            proxy_args = ["proxy", "--config", str(config_path), "--port", str(proxy_port)]
            processes.append(start(proxy_args, tmp / "proxy.log"))
            wait_http(f"http://127.0.0.1:{proxy_port}/healthz")
            worker_args = ["worker", "--config", str(config_path), "--beat", "--loglevel", args.loglevel]
            processes.append(start(worker_args, tmp / "worker.log"))
            called: dict[str, float] = {}
            with httpx.Client(base_url=f"http://127.0.0.1:{proxy_port}/v1", timeout=30) as client:

                def call(name: str) -> None:
                    reply = client.post(
                        "/chat/completions",
                        headers={"X-FinOps-Team": name, "X-FinOps-Feature": "bench"},
                        json={"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}]},
                    )
                    reply.raise_for_status()
                    called[name] = time.time()

                # Warm-up: the worker's boot and beat's first tick (a full period after it starts) are
                # not part of the steady state being measured.
                call(WARMUP)
                deadline = time.monotonic() + 2 * period + 60
                while WARMUP not in received and time.monotonic() < deadline:
                    time.sleep(0.2)
                for name in names:
                    call(name)
                    time.sleep(period / args.trials)
            deadline = time.monotonic() + 2 * period + 30
            while len(received) < len(names) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            for process in reversed(processes):
                os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:  # a worker still holding retries: its group goes
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            server.shutdown()
            if args.worker_log:
                Path(args.worker_log).write_bytes((tmp / "worker.log").read_bytes())
        missing = [n for n in [WARMUP, *names] if n not in received]
        if missing:
            print(f"no alert for {missing}; worker log:\n{(tmp / 'worker.log').read_text()[-3000:]}")
            return 1
    latencies = [received[n] - called[n] for n in names]
    print(f"alert latency, call -> webhook POST, budgets job every {period:g} s, {len(names)} trials:")
    for name, latency in zip(names, latencies, strict=True):
        print(f"  {name}: {latency:6.2f} s")
    print(
        f"  min {min(latencies):.2f} s, median {statistics.median(latencies):.2f} s, "
        f"max {max(latencies):.2f} s (bound: {period:g} s + a few seconds)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
