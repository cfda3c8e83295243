"""A database filled by a real loadgen run, a running `finops dashboard`, and a headless Chromium.

The data comes the way a user's does: ``finops loadgen`` through a real proxy in front of the vLLM
stand-in, then the real attribution, rollup and trace jobs. Nothing is written to the tables by hand.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from dashboards.passwords import hash_password
from finops.config import load_config
from finops.db import make_engine
from finops.jobs.registry import run_job
from finops.loadgen import LoadConfig, run_load
from tests.support.processes import Process, free_port
from tests.support.stack import ProxyStack, backend, start_sim

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# Small amounts, so that the loadgen run crosses thresholds and alerts fire.
BUDGETS = [
    {"name": "search-monthly", "scope": {"team": "search"}, "monthly_usd": "0.0015", "channels": ["ops"]},
    {"name": "support-monthly", "scope": {"team": "support"}, "monthly_usd": "0.001", "channels": ["ops"]},
    {"name": "fleet-gpu", "monthly_usd": "5", "basis": "gpu", "channels": ["ops"]},
]

# name -> (role, team, password)
USERS: dict[str, tuple[str, str | None, str]] = {
    "admin": ("admin", None, "admin-pass-1"),
    "fin": ("finance", None, "finance-pass-2"),
    "ana": ("team", "search", "search-pass-3"),
    "bob": ("team", "support", "support-pass-4"),
}
# Hashing is deliberately slow; the same hashes serve every test of the session.
_HASHES: dict[str, str] = {}


def user_entries() -> list[dict[str, Any]]:
    entries = []
    for name, (role, team, password) in USERS.items():
        if name not in _HASHES:
            _HASHES[name] = hash_password(password)
        entry: dict[str, Any] = {"name": name, "role": role, "password_hash": _HASHES[name]}
        if team:
            entry["team"] = team
        entries.append(entry)
    return entries


def fill_from_loadgen(tmp: Path, db_url: str, queries: int = 40, seed: int = 5) -> Path:
    """Run loadgen through a proxy into ``db_url``, then the jobs; returns the config file (with users)."""
    with ExitStack() as cleanup:
        sim, sim_url = start_sim(tmp, ("llama-8b", "qwen-1b"), "--ttft-ms", "5", "--itl-ms", "1")
        cleanup.callback(sim.stop)
        proxy = ProxyStack(
            tmp,
            db_url,
            [backend("gpu-a", sim_url, ("llama-8b",)), backend("gpu-b", sim_url, ("qwen-1b",))],
            attribution={"window_s": 10, "close_delay_s": 0},
            traces={"quiet_s": 0},
            dashboard={"users": user_entries()},
            channels={"ops": {"type": "console"}},
            budgets=BUDGETS,
        )
        cleanup.callback(proxy.close)
        proxy.start()
        report = run_load(
            LoadConfig(
                proxy_url=proxy.url,
                queries=queries,
                rps=0,
                concurrency=8,
                seed=seed,
                retry_rate=0.15,
                failure_rate=0.1,
                run_id="dash",
            )
        )
        ids = {c.request_id for c in report.calls if c.request_id}
        proxy.wait_rows(lambda rows: ids <= {r["request_id"] for r in rows}, timeout_s=30)
        config_path = proxy.config_path
    config = load_config(config_path)
    engine = make_engine(db_url)
    try:
        # The last window must be over before it is attributed (close_delay_s is 0).
        now = datetime.now(UTC) + timedelta(seconds=config.attribution.window_s)
        for job in ("attribution", "rollups", "traces", "rollups", "budgets", "latency_rollups"):
            # rollups twice: the second run takes the hours that attribution marked dirty.
            run_job(engine, config, job, now=now)
    finally:
        engine.dispose()
    return config_path


@contextmanager
def running_dashboard(tmp: Path, config_path: Path) -> Iterator[str]:
    port = free_port()
    process = Process(
        ["dashboard", "--config", str(config_path), "--port", str(port)], tmp / f"dashboard-{port}.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_http(url + "/healthz", timeout_s=60)
        yield url
    finally:
        process.stop()


def login(client: httpx.Client, base: str, name: str) -> None:
    reply = client.post(
        base + "/login",
        data={"username": name, "password": USERS[name][2], "next": "/"},
        follow_redirects=False,
    )
    assert reply.status_code == 302, reply.text[:500]
    assert "finops_session" in client.cookies


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium_available() -> bool:
    return shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None


@contextmanager
def browser(tmp: Path) -> Iterator[Any]:
    """A real headless Chromium driven by chromedriver (Debian's packages; nothing is downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,1000",
        f"--user-data-dir={tmp / f'chromium-{time.monotonic_ns()}'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
