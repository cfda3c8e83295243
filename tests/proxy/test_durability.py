"""Nothing is lost: Postgres goes away and comes back under a live proxy; SIGTERM mid-stream."""

from __future__ import annotations

import signal
import threading

import httpx
import openai

from finops.migrate import upgrade
from tests.support.private_postgres import PrivatePostgres
from tests.support.stack import ProxyStack, backend, start_sim

TAGS = {"X-FinOps-Team": "search", "X-FinOps-Feature": "durability"}
CHAT = {"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


def test_calls_made_while_postgres_is_down_reach_the_ledger(tmp_path):
    server = PrivatePostgres()
    sim, sim_url = start_sim(tmp_path, ("llama-8b",))
    proxy = None
    try:
        server.start()
        upgrade(server.url)
        proxy = ProxyStack(tmp_path, server.url, [backend("gpu-a", sim_url, ["llama-8b"])]).start()
        client = httpx.Client(base_url=proxy.base_url, headers=TAGS)
        ids = [client.post("/chat/completions", json=CHAT).headers["x-finops-request-id"] for _ in range(20)]
        proxy.wait_rows(lambda rows: len(rows) == 20)

        server.stop()
        down = [client.post("/chat/completions", json=CHAT) for _ in range(30)]
        assert all(r.status_code == 200 for r in down), "the proxy must keep serving while the ledger is away"
        ids += [r.headers["x-finops-request-id"] for r in down]
        health = client.get(proxy.url + "/healthz").json()
        assert health["ledger"]["database_up"] is False or health["ledger"]["queued_records"] > 0

        server.start()
        rows = proxy.wait_rows(lambda rows: len(rows) == 50, timeout_s=30)
        assert sorted(r["request_id"] for r in rows) == sorted(ids)
        assert client.get(proxy.url + "/healthz").json()["ledger"]["database_up"] is True
    finally:
        if proxy is not None:
            proxy.close()
        sim.stop()
        server.destroy()


def test_sigterm_finishes_in_flight_streams_and_flushes(tmp_path, pg_url):
    sim, sim_url = start_sim(tmp_path, ("llama-8b",))
    proxy = ProxyStack(tmp_path, pg_url, [backend("gpu-a", sim_url, ["llama-8b"])]).start()
    try:
        client = openai.OpenAI(base_url=proxy.base_url, api_key="EMPTY", default_headers=TAGS, max_retries=0)
        started = threading.Event()
        result: dict[str, object] = {}

        def stream() -> None:
            response = client.chat.completions.with_raw_response.create(
                model="llama-8b",
                messages=CHAT["messages"],
                stream=True,
                max_tokens=40,
                extra_headers={"X-Sim-ITL-Ms": "25", "X-Sim-Output-Tokens": "40"},
            )
            result["id"] = response.headers["x-finops-request-id"]
            text = ""
            for chunk in response.parse():
                started.set()
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
            result["text"] = text

        thread = threading.Thread(target=stream)
        thread.start()
        assert started.wait(10)
        assert proxy.stop(signal.SIGTERM) == 0
        thread.join(10)
        assert "text" in result, "the in-flight stream was cut by the shutdown"
        from finops.tokens.counting import count_text

        assert count_text(str(result["text"])) == 40
        rows = proxy.rows()  # the proxy has exited: whatever is here was flushed before exit
        row = next(r for r in rows if r["request_id"] == result["id"])
        assert (row["completion_tokens"], row["status_code"]) == (40, 200)
    finally:
        proxy.close()
        sim.stop()
