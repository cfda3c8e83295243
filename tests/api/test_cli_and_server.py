"""`finops tokens` and `finops api` as an operator runs them: real processes, a real Postgres."""

from __future__ import annotations

import re

import httpx
import pytest

from finops.cli import main
from tests.api.support import SMTP_PASSWORD, WEBHOOK_URL
from tests.support.processes import Process, free_port

TOKEN = re.compile(r"^fomt-\S+$", re.MULTILINE)


def tokens_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["tokens", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tokens_create_list_revoke(pg_url: str, capsys, monkeypatch):
    monkeypatch.setenv("FINOPS_DATABASE_URL", pg_url)
    code, out, _ = tokens_cli(capsys, "create", "--role", "team", "--team", "search", "--name", "search bot")
    assert code == 0
    token = TOKEN.search(out).group(0)
    token_id = re.search(r"created management token (tok_\w+), role team, team search", out).group(1)

    code, out, _ = tokens_cli(capsys, "list")
    assert code == 0 and token_id in out and "search bot" in out
    assert token not in out and token[:12] + "..." in out

    for bad, message in (
        (["--role", "team"], "a team token needs a team"),
        (["--role", "finance", "--team", "search"], "give a team only with role team"),
        (["--role", "team", "--team", "=oops"], "tag 'team' must be"),
    ):
        code, out, err = tokens_cli(capsys, "create", *bad)
        assert code == 2 and message in err and "fomt-" not in out

    code, out, _ = tokens_cli(capsys, "revoke", token_id)
    assert code == 0 and "revoked" in out
    code, out, _ = tokens_cli(capsys, "list")
    assert token_id not in out
    code, out, _ = tokens_cli(capsys, "list", "--all")
    assert token_id in out
    code, _, err = tokens_cli(capsys, "revoke", "tok_nope")
    assert code == 1 and "no management token" in err


def test_api_process_serves_tokens_not_proxy_keys_and_logs_no_secret(
    pg_url: str, tmp_path, capsys, monkeypatch
):
    env = {
        "FINOPS_DATABASE_URL": pg_url,
        "FINOPS_CHANNELS": f'{{ops: {{type: slack, webhook_url: "{WEBHOOK_URL}"}}}}',
        "FINOPS_SMTP__PASSWORD": SMTP_PASSWORD,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    tokens = {}
    for role in ("admin", "finance"):
        code, out, _ = tokens_cli(capsys, "create", "--role", role)
        assert code == 0
        tokens[role] = TOKEN.search(out).group(0)
    assert main(["keys", "create", "--team", "search"]) == 0
    proxy_key = re.search(r"^fo-\S+$", capsys.readouterr().out, re.MULTILINE).group(0)

    port = free_port()
    process = Process(["api", "--port", str(port)], tmp_path / "api.log", env=env)
    try:
        base = f"http://127.0.0.1:{port}/finops/api/v1"
        process.wait_http(f"{base}/openapi.json")
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/health").status_code == 401
            assert client.get("/health", headers={"Authorization": f"Bearer {proxy_key}"}).status_code == 401
            finance = {"Authorization": f"Bearer {tokens['finance']}"}
            admin = {"Authorization": f"Bearer {tokens['admin']}"}
            health = client.get("/health", headers=finance)
            assert health.status_code == 200 and health.json()["role"] == "finance"
            assert client.post("/keys", headers=finance, json={"team": "x"}).status_code == 403
            created = client.post("/keys", headers=admin, json={"team": "x"})
            assert created.status_code == 201
            new_key = created.json()["key"]
            # A key put in the URL by mistake: no such team, and the URL is not written to the log.
            misplaced = client.get("/spend", headers=finance, params={"team": proxy_key})
            assert misplaced.status_code == 200 and misplaced.json()["items"] == []
            spend = client.get("/spend", headers=finance, params={"by": "model"})
            assert spend.status_code == 200 and spend.json()["items"] == []
    finally:
        assert process.stop() == 0
    log = process.log()
    assert "GET /finops/api/v1/health 200" in log  # access lines are there to be searched
    for secret in (*tokens.values(), proxy_key, new_key, WEBHOOK_URL, SMTP_PASSWORD):
        assert secret not in log
