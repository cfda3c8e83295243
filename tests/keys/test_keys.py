"""API keys end to end: `finops keys` makes them, the proxy checks them, the ledger names them."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from finops.db import make_engine, unit_of_work
from finops.keys.models import ApiKeyRow
from tests.support.stack import ProxyStack, backend, start_sim

CHAT = {"model": "llama-8b", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def finops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finops.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def stack(tmp_path, pg_url):
    sim, sim_url = start_sim(tmp_path, ("llama-8b",))
    proxy = ProxyStack(
        tmp_path,
        pg_url,
        [backend("gpu-a", sim_url, ["llama-8b"])],
        auth={"require_api_key": True},
        tagging={"untagged": "reject"},
    ).start()
    yield proxy
    proxy.close()
    sim.stop()


def call(stack, key: str | None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(stack.base_url + "/chat/completions", json=CHAT, headers=headers)


def eventually(check, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def test_key_lifecycle(stack):
    created = finops(
        "keys",
        "create",
        "--config",
        str(stack.config_path),
        "--team",
        "search",
        "--feature",
        "autocomplete",
        "--name",
        "ci",
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split()[2]
    assert key.startswith("fo-") and len(key) > 40

    # Only a keyed hash is stored: the key itself is nowhere in the table.
    with unit_of_work(make_engine(stack.db_url)) as session:
        row = session.scalars(select(ApiKeyRow)).one()
        assert key not in {row.key_hash, row.key_prefix, row.id} and row.key_hash != key
        assert key.startswith(row.key_prefix)

    ok = eventually(lambda: call(stack, key).status_code == 200)
    assert ok
    response = call(stack, key, **{"X-FinOps-Feature": "summaries"})
    row = stack.row(response.headers["x-finops-request-id"])
    assert (row["team"], row["feature"], row["api_key_id"]) == ("search", "summaries", key_id)
    default = stack.row(call(stack, key).headers["x-finops-request-id"])
    assert default["feature"] == "autocomplete"

    listing = finops("keys", "list", "--config", str(stack.config_path))
    assert key_id in listing.stdout and key not in listing.stdout

    mismatch = call(stack, key, **{"X-FinOps-Team": "ads"})
    assert mismatch.status_code == 403 and mismatch.json()["error"]["code"] == "team_mismatch"

    assert finops("keys", "revoke", "--config", str(stack.config_path), key_id).returncode == 0
    assert eventually(lambda: call(stack, key).status_code == 401)


def test_missing_and_wrong_keys_are_401(stack):
    for response in (call(stack, None), call(stack, "fo-not-a-real-key"), call(stack, "something-else")):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"


def test_revoking_an_unknown_key_fails_clearly(stack):
    result = finops("keys", "revoke", "--config", str(stack.config_path), "key_nope")
    assert result.returncode == 1 and "no API key" in result.stderr
    bad = finops("keys", "create", "--config", str(stack.config_path), "--team", 'bad"team')
    assert bad.returncode == 2 and "team" in bad.stderr
