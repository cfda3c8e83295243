"""Several backends for one model: least busy first, refusers skipped for a while."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from finops.config import BackendConfig
from finops.proxy.routing import Router
from tests.support.processes import free_port
from tests.support.stack import ProxyStack, backend, start_sim

TAGS = {"X-FinOps-Team": "search", "X-FinOps-Feature": "routing"}
CHAT = {"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_router_prefers_the_least_busy_and_cools_down_refusers():
    router = Router([BackendConfig(name=n, url=f"http://{n}", models=["m"]) for n in "abc"], cooldown_s=60)
    a, b, c = router.backends
    a.in_flight, b.in_flight, c.in_flight = 3, 1, 2
    assert [x.name for x in router.candidates("m")] == ["b", "c", "a"]
    router.mark_down(b)
    assert [x.name for x in router.candidates("m")] == ["c", "a", "b"]
    router.mark_up(b)
    assert router.candidates("m")[0] is b
    assert router.candidates("other") == []


def test_calls_skip_a_dead_backend_and_spread_over_live_ones(tmp_path, pg_url):
    sim1, url1 = start_sim(tmp_path, ("llama-8b",))
    sim2, url2 = start_sim(tmp_path, ("llama-8b",))
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = ProxyStack(
        tmp_path,
        pg_url,
        [
            backend("dead", dead, ["llama-8b"]),
            backend("one", url1, ["llama-8b"]),
            backend("two", url2, ["llama-8b"]),
        ],
    ).start()
    try:
        with httpx.Client(
            base_url=proxy.base_url, headers={**TAGS, "X-Sim-TTFT-Ms": "150"}, timeout=30
        ) as client:

            def call(_: int) -> int:
                return client.post("/chat/completions", json=CHAT).status_code

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(call, range(24)))
        assert statuses == [200] * 24
        rows = proxy.wait_rows(lambda rows: len(rows) == 24)
        used = {name: sum(1 for r in rows if r["backend"] == name) for name in ("dead", "one", "two")}
        assert used["dead"] == 0
        # Concurrent slow calls go to whichever has fewer in flight, so both live backends take a share.
        assert used["one"] >= 6 and used["two"] >= 6
        health = httpx.get(proxy.url + "/healthz").json()
        assert any(b["name"] == "dead" and b["cooling_down"] for b in health["backends"])
    finally:
        proxy.close()
        sim1.stop()
        sim2.stop()
