"""Secrets (management tokens, proxy keys, webhook URLs, SMTP passwords) never appear in an answer or in
a log line, errors and crashes included."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from tests.api.support import SMTP_PASSWORD, WEBHOOK_URL, Api


def secrets_of(api: Api) -> list[str]:
    return [*api.tokens.values(), api.proxy_key, WEBHOOK_URL, SMTP_PASSWORD]


def test_no_secret_in_answers_or_logs(api: Api, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    answers = []
    created = api.client.post(api.url("/keys"), headers=api.auth("admin"), json={"team": "billing"})
    assert created.status_code == 201
    new_key = created.json()["key"]
    for who in ("admin", "finance", "search"):
        for path in ("/health", "/teams", "/keys", "/spend", "/traces/top", "/traces/search-rag-1"):
            answers.append(api.get(path, who, **({} if "rag" in path else api.period)))
    # Refusals and invalid input, some of it carrying a secret where it does not belong.
    answers.append(api.client.get(api.url("/keys"), headers={"Authorization": f"Bearer {api.proxy_key}"}))
    answers.append(
        api.client.get(api.url("/keys"), headers={"Authorization": f"Basic {api.tokens['admin']}"})
    )
    answers.append(
        api.client.post(api.url("/keys"), headers=api.auth("admin"), json={"team": f'"{WEBHOOK_URL}"'})
    )
    answers.append(
        api.client.post(api.url("/keys"), headers=api.auth("admin"), json={"team": "a", "x": SMTP_PASSWORD})
    )
    answers.append(api.get("/spend", "admin", team=api.tokens["finance"] + "\x00"))
    answers.append(api.get("/spend", "admin", start=SMTP_PASSWORD))
    assert {r.status_code for r in answers[-6:]} == {401, 422}
    # A crash: the table under the spend report is gone; the answer is a plain 500, the log has the rest.
    with api.engine.begin() as conn:
        conn.execute(text("DROP TABLE usage_rollups"))
    crash = api.get("/spend", "admin", **api.period)
    assert crash.status_code == 500
    assert crash.json()["error"]["code"] == "internal_error"
    assert "usage_rollups" not in crash.text
    answers.append(crash)

    assert any("unhandled error on GET /finops/api/v1/spend" in r.getMessage() for r in caplog.records)
    # The API's own lines (the test client's httpx lines are the caller's side, with the URLs it sent).
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert any(r.name == "finops.api.access" for r in server_side)
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(r) for r in server_side)
    for secret in [*secrets_of(api), new_key]:
        assert secret not in logged
        for answer in answers:
            assert secret not in answer.text, (answer.request.url, answer.text)
            assert secret not in str(answer.headers)
    # The created key went to its creator once.
    assert new_key in created.text
