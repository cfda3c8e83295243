"""``finops up``: every finops process as children of one command, on the embedded default.

It runs the proxy and a Celery worker with the scheduler inside it. With ``--demo`` it first starts a
simulated vLLM fleet (``finops sim`` backends of three model sizes) and writes a config for it.
Children are supervised: one that dies is reported and the rest are stopped. Ctrl-C (or SIGTERM) stops
the proxy first, so that its in-flight calls finish against live backends and its ledger queue is
flushed, then the rest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from finops.config import FinopsConfig, load_config
from finops.migrate import upgrade

DEMO_DIR = Path("finops-demo")


@dataclass(frozen=True)
class DemoBackend:
    name: str
    # Port of its stand-in, counted from the demo's first port (--sim-port, default 9101).
    port_offset: int
    model: str
    gpus: int
    usd_per_gpu_hour: str
    ttft_ms: int
    itl_ms: int
    output_tokens: int


# Three model sizes on four stand-in backends: the 70B model on two 4-GPU nodes, priced like the real thing.
DEMO_FLEET = (
    DemoBackend("h100-70b-a", 0, "llama-70b", 4, "2.49", 180, 30, 120),
    DemoBackend("h100-70b-b", 1, "llama-70b", 4, "2.49", 180, 30, 120),
    DemoBackend("l40s-8b", 2, "llama-8b", 1, "0.86", 60, 12, 80),
    DemoBackend("t4-1b", 3, "qwen-1.5b", 1, "0.35", 25, 6, 40),
)
DEMO_SIM_PORT = 9101
DEMO_PRICES = {
    "llama-70b": {"input_per_mtok": "0.59", "output_per_mtok": "0.79"},
    "llama-8b": {"input_per_mtok": "0.05", "output_per_mtok": "0.08"},
    "qwen-1.5b": {"input_per_mtok": "0.02", "output_per_mtok": "0.04"},
}


CONSOLE = ["console"]


def demo_config(directory: Path, sim_port: int = DEMO_SIM_PORT) -> dict[str, Any]:
    return {
        "database_url": f"sqlite:///{(directory / 'finops.db').resolve()}",
        "backends": [
            {
                "name": b.name,
                "url": f"http://127.0.0.1:{sim_port + b.port_offset}",
                "models": [b.model],
                "gpus": b.gpus,
                "usd_per_gpu_hour": b.usd_per_gpu_hour,
            }
            for b in DEMO_FLEET
        ],
        "prices": DEMO_PRICES,
        "tagging": {"untagged": "unallocated"},
        "ledger": {"spool_dir": str((directory / "spool").resolve())},
        "worker": {
            "broker_dir": str((directory / "broker").resolve()),
            "beat_schedule_file": str((directory / "beat-schedule").resolve()),
        },
        # Budgets sized to the demo's traffic (about $0.0025 of tokens a minute per team, $0.35 of GPU
        # time a minute for the fleet), so 50% and 80% alerts print on the console within minutes.
        "channels": {"console": {"type": "console"}},
        "budgets": [
            {"name": "search-team", "scope": {"team": "search"}, "monthly_usd": "0.01", "channels": CONSOLE},
            {"name": "support", "scope": {"team": "support"}, "monthly_usd": "0.02", "channels": CONSOLE},
            {"name": "fleet-gpu", "basis": "gpu", "monthly_usd": "3", "channels": CONSOLE},
        ],
    }


class Child:
    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        # Own process group: a Ctrl-C at the terminal reaches us, and we stop children in our order.
        self.popen = subprocess.Popen([sys.executable, "-m", "finops.cli", *args], start_new_session=True)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                print(
                    f"finops up: {self.name} did not stop within {timeout_s:.0f} s; killing it",
                    file=sys.stderr,
                )
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode


def _wait_http(url: str, child: Child, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited with status {child.popen.returncode} while starting")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer at {url} within {timeout_s:.0f} s")


class Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: object) -> None:
    raise Stop


def run_up(
    config_path: str | None,
    demo: bool,
    proxy_port: int,
    sim_port: int = DEMO_SIM_PORT,
    dashboard_port: int | None = None,
) -> int:
    demo_login = ""
    if demo and config_path is None:
        from dashboards.demo import DEMO_USER, demo_dashboard

        DEMO_DIR.mkdir(exist_ok=True)
        path = DEMO_DIR / "finops.yaml"
        settings = demo_config(DEMO_DIR, sim_port)
        settings["dashboard"], demo_password = demo_dashboard(DEMO_DIR)
        demo_login = f"  (sign in as {DEMO_USER} / {demo_password})"
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
        config_path = str(path)
    config: FinopsConfig = load_config(config_path)
    dashboard_port = config.dashboard.port if dashboard_port is None else dashboard_port
    print(f"finops up: migrating {config.database_url}")
    upgrade(config.database_url)

    children: list[Child] = []
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        if demo:
            sims = [
                (
                    b,
                    Child(
                        f"sim {b.name}",
                        [
                            "sim",
                            "--port",
                            str(sim_port + b.port_offset),
                            "--model",
                            b.model,
                            "--ttft-ms",
                            str(b.ttft_ms),
                            "--itl-ms",
                            str(b.itl_ms),
                            "--output-tokens",
                            str(b.output_tokens),
                            "--seed",
                            str(b.port_offset),
                        ],
                    ),
                )
                for b in DEMO_FLEET
            ]
            children.extend(sim for _, sim in sims)
            for b, sim in sims:
                _wait_http(f"http://127.0.0.1:{sim_port + b.port_offset}/health", sim)
        proxy_args = ["proxy", "--port", str(proxy_port)]
        if config_path:
            proxy_args += ["--config", config_path]
        proxy = Child("proxy", proxy_args)
        children.append(proxy)
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        config_args = ["--config", config_path] if config_path else []

        # One worker process with the scheduler inside it: one machine needs no separate beat.
        children.append(Child("worker", ["worker", "--beat", "--loglevel", "WARNING", *config_args]))
        dashboard = Child("dashboard", ["dashboard", "--port", str(dashboard_port), *config_args])
        children.append(dashboard)
        dashboard_url = f"http://{config.dashboard.host}:{dashboard_port}"
        _wait_http(proxy_url + "/healthz", proxy)
        _wait_http(dashboard_url + "/healthz", dashboard, timeout_s=60)
        if demo:
            # Traffic from several teams and features: RAG, multi-turn, agent, safety and retry pipelines.
            children.append(
                Child(
                    "loadgen",
                    [
                        "loadgen",
                        "--proxy",
                        proxy_url,
                        "--rps",
                        "3",
                        "--concurrency",
                        "6",
                        "--retry-rate",
                        "0.05",
                        "--failure-rate",
                        "0.02",
                        "--quiet",
                        # Every call it saw answered, to check against the ledger.
                        "--json",
                        str(DEMO_DIR / "loadgen-calls.json"),
                    ],
                )
            )
        model = config.models()[0] if config.models() else "MODEL"
        print(
            f"""
finops is up.
  proxy (OpenAI API)  {proxy_url}/v1
  metrics             {proxy_url}/metrics
  ledger              {config.database_url}
  worker + beat       attribution and rollups every {config.jobs.attribution_every_s:g} s
  report              finops report{" --config " + config_path if config_path else ""} --by team
  dashboard           {dashboard_url}{demo_login}
Try it:
  curl -s {proxy_url}/v1/chat/completions -H 'content-type: application/json' \\
    -H 'X-FinOps-Team: search' -H 'X-FinOps-Feature: autocomplete' \\
    -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "hello"}}]}}'
Ctrl-C stops everything (the ledger is flushed first).
""",
            flush=True,
        )
        while True:
            for child in children:
                if not child.alive():
                    print(
                        f"finops up: {child.name} exited with status {child.popen.returncode}; stopping",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        print("\nfinops up: stopping", file=sys.stderr)
        return 0
    except RuntimeError as exc:
        print(f"finops up: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop
        # Traffic first, then the proxy (it drains its calls while the backends still answer), then the rest.
        order = {"loadgen": 0, "proxy": 1}
        for child in sorted(children, key=lambda c: order.get(c.name, 2)):
            child.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
