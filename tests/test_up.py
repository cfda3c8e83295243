"""`finops up --demo` as a user runs it: it serves, the ledger grows, Ctrl-C stops it with nothing lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import httpx

from tests.support.processes import free_port


def wait_for(check, timeout_s: float, what: str, log) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s:.0f} s; output:\n{log()[-4000:]}")


def test_up_demo_serves_records_and_stops_cleanly(tmp_path):
    port, sim_port, dashboard_port = free_port(), free_port(), free_port()
    while {port, dashboard_port} & set(range(sim_port, sim_port + 4)):  # the stand-ins take four ports
        sim_port = free_port()
    output = tmp_path / "up.log"
    with open(output, "wb") as log_file:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "finops.cli",
                "up",
                "--demo",
                "--port",
                str(port),
                "--sim-port",
                str(sim_port),
                "--dashboard-port",
                str(dashboard_port),
            ],
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "FINOPS_LOG_LEVEL": "WARNING",
                # A budget the demo's traffic crosses half of in about half a minute, checked often, so
                # that its 50% alert reaches the console channel soon (and apart from the 80% one).
                "FINOPS_BUDGETS": "[{name: quick, monthly_usd: '0.005', channels: [console]}]",
                "FINOPS_JOBS__BUDGETS_EVERY_S": "5",
            },
        )
        try:

            def log() -> str:
                return output.read_text(errors="replace")

            def answers() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(answers, 60, "the proxy did not answer", log)
            reply = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                timeout=30,
                headers={"X-FinOps-Team": "search", "X-FinOps-Feature": "autocomplete"},
                json={"model": "llama-8b", "messages": [{"role": "user", "content": "hello"}]},
            )
            assert reply.status_code == 200
            database = tmp_path / "finops-demo" / "finops.db"

            def ledger_rows() -> int:
                with sqlite3.connect(database) as conn:
                    return int(conn.execute("select count(*) from token_ledger").fetchone()[0])

            wait_for(lambda: ledger_rows() >= 30, 60, "the ledger did not grow to 30 rows", log)
            wait_for(
                lambda: "=== ALERT [console] Budget quick passed 50%" in log(),
                180,
                "the 50% alert did not reach the console",
                log,
            )
            # The dashboard runs too, behind its login; the demo prints the admin's password.
            dashboard = f"http://127.0.0.1:{dashboard_port}"
            assert f"dashboard           {dashboard}  (sign in as admin / " in log()
            assert httpx.get(dashboard + "/", timeout=10).status_code == 302
            password = (tmp_path / "finops-demo" / "dashboard-password").read_text().strip()
            signed_in = httpx.post(
                dashboard + "/login", data={"username": "admin", "password": password}, timeout=10
            )
            assert signed_in.status_code == 302 and signed_in.headers["location"] == "/"
            # Signed in, every page and Dash's layout answer (the browser tests check their content).
            with httpx.Client(base_url=dashboard, cookies=signed_in.cookies, timeout=10) as browser:
                for page in ("/", "/spend", "/amplification", "/traces", "/gpus", "/latency", "/alerts"):
                    answer = browser.get(page)
                    assert answer.status_code == 200 and "_dash-config" in answer.text, page
                assert browser.get("/_dash-layout").status_code == 200
            up.send_signal(signal.SIGINT)
            assert up.wait(90) == 0, log()
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()

    calls = json.loads((tmp_path / "finops-demo" / "loadgen-calls.json").read_text())["calls"]
    answered = {c["request_id"] for c in calls if c.get("request_id") and c.get("status")}
    assert len(answered) >= 10
    with sqlite3.connect(database) as conn:
        recorded = {row[0] for row in conn.execute("select request_id from token_ledger")}
    assert answered <= recorded, f"{len(answered - recorded)} answered calls missing from the ledger"
    assert reply.headers["x-finops-request-id"] in recorded
    with sqlite3.connect(database) as conn:
        fifty = conn.execute(
            "select d.channel, d.status from budget_alerts a join alert_deliveries d"
            " on d.source = 'budget' and d.source_id = cast(a.id as text)"
            " where a.budget_name = 'quick' and a.threshold = 0.5"
        ).fetchall()
    assert fifty == [("console", "delivered")]
