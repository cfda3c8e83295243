"""Who may call what: every operation of the OpenAPI document, against every kind of caller."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from finops.alerts.models import AlertDeliveryRow
from finops.api.app import PREFIX
from finops.api.models import ManagementTokenRow
from finops.api.tokens import revoke_token
from finops.db import unit_of_work
from finops.jobs.registry import run_job
from tests.api.support import Api

EVERYONE = {"admin", "finance", "team"}
# The role table, written out: admin everything, finance reads, team reads its own.
EXPECTED_ROLES: dict[tuple[str, str], set[str]] = {
    ("get", "/health"): EVERYONE,
    ("get", "/teams"): EVERYONE,
    ("get", "/keys"): {"admin", "finance"},
    ("post", "/keys"): {"admin"},
    ("post", "/keys/{key_id}/revoke"): {"admin"},
    ("get", "/spend"): EVERYONE,
    ("get", "/traces/top"): EVERYONE,
    ("get", "/traces/{trace_id}"): EVERYONE,
    ("get", "/budgets"): {"admin", "finance"},
    ("post", "/budgets"): {"admin"},
    ("get", "/budgets/status"): EVERYONE,
    ("get", "/budgets/{name}"): {"admin", "finance"},
    ("patch", "/budgets/{name}"): {"admin"},
    ("delete", "/budgets/{name}"): {"admin"},
    ("get", "/alerts"): EVERYONE,
    ("get", "/alerts/deliveries/{delivery_id}"): {"admin", "finance"},
    ("post", "/alerts/deliveries/{delivery_id}/redeliver"): {"admin"},
    ("get", "/exports/{format}"): {"admin", "finance"},
}


@pytest.fixture
def walk(api: Api) -> Api:
    """The seeded API plus what the walk needs to exist: a budget of the API's, an alert delivery."""
    response = api.client.post(
        api.url("/budgets"),
        headers=api.auth("admin"),
        json={"name": "walk", "scope": {"team": "search"}, "monthly_usd": "0.00001", "channels": ["log"]},
    )
    assert response.status_code == 201
    run_job(api.engine, api.config, "budgets")
    return api


def operations(api: Api) -> list[tuple[str, str, dict[str, Any]]]:
    response = api.client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            found.append((method, path, operation))
    return found


def request_for(api: Api, method: str, path: str) -> dict[str, Any]:
    """A valid request for the operation: real ids, and a body where one is needed."""
    with unit_of_work(api.engine) as session:
        from finops.keys.service import list_keys

        key_id = list_keys(session)[0].id
        delivery_id = session.scalars(select(AlertDeliveryRow.id)).first()
    assert delivery_id is not None
    values = {
        "key_id": key_id,
        "trace_id": "search-rag-1",
        "name": "walk",
        "delivery_id": str(delivery_id),
        "format": "ledger",
    }
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    request: dict[str, Any] = {"method": method.upper(), "url": url}
    bodies = {
        ("post", "/keys"): {"team": "search", "feature": "rag"},
        ("post", "/budgets"): {"name": "walk-new", "monthly_usd": "10"},
        ("patch", "/budgets/{name}"): {"forecast": False},
    }
    if (method, path.removeprefix(PREFIX)) in bodies:
        request["json"] = bodies[(method, path.removeprefix(PREFIX))]
    if path.endswith(("/spend", "/traces/top", "/exports/{format}")):
        request["params"] = api.period
    return request


def test_every_operation_declares_roles_and_security(walk: Api):
    api = walk
    ops = operations(api)
    declared = {(m, p.removeprefix(PREFIX)): set(op["x-finops-roles"]) for m, p, op in ops}
    assert declared == EXPECTED_ROLES
    for _method, path, operation in ops:
        assert path.startswith(PREFIX)
        assert operation["security"] == [{"HTTPBearer": []}]
        assert {"401", "403", "422"} <= set(operation["responses"])


def test_no_operation_answers_without_a_valid_management_token(walk: Api):
    api = walk
    with unit_of_work(api.engine) as session:
        from finops.api.tokens import create_token

        revoked = create_token(session, api.config, "admin", name="to revoke")
        revoke_token(session, revoked.token_id)
    callers = {
        "no header": {},
        "proxy key": {"Authorization": f"Bearer {api.proxy_key}"},
        "unknown token": {"Authorization": "Bearer fomt-not-a-real-token"},
        "revoked token": {"Authorization": f"Bearer {revoked.token}"},
        "basic scheme": {"Authorization": f"Basic {api.tokens['admin']}"},
        "bare token": {"Authorization": api.tokens["admin"]},
        "empty bearer": {"Authorization": "Bearer "},
    }
    ops = operations(api)
    assert len(ops) == len(EXPECTED_ROLES)
    for method, path, _operation in ops:
        for label, headers in callers.items():
            response = api.client.request(**request_for(api, method, path), headers=headers)
            assert response.status_code == 401, (method, path, label, response.text)
            body = response.json()
            assert body["error"]["code"] == "unauthorized", (method, path, label)
            assert response.headers["www-authenticate"] == "Bearer"
            assert api.proxy_key not in response.text


def test_each_role_against_each_operation(walk: Api):
    api = walk
    callers = {"admin": "admin", "finance": "finance", "team": "search"}
    for method, path, operation in operations(api):
        allowed = set(operation["x-finops-roles"])
        for role, who in callers.items():
            response = api.client.request(**request_for(api, method, path), headers=api.auth(who))
            if role in allowed:
                assert response.status_code in (200, 201, 204), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.json()["error"]["code"] == "forbidden"
    # Refused calls changed nothing: only the admin's create made a key, and only its revoke revoked one.
    with unit_of_work(api.engine) as session:
        from finops.keys.service import list_keys

        keys = list_keys(session, include_revoked=True)
    assert len(keys) == 2
    assert sum(1 for k in keys if k.revoked_at is not None) == 1


def test_tokens_are_stored_only_as_keyed_hashes(api: Api):
    with unit_of_work(api.engine) as session:
        rows = list(session.scalars(select(ManagementTokenRow)))
    stored = " ".join(f"{r.token_hash} {r.token_prefix} {r.name}" for r in rows)
    assert len(rows) == 4
    for token in api.tokens.values():
        assert token not in stored
        assert token.startswith("fomt-")
    assert {r.role for r in rows} == {"admin", "finance", "team"}
    assert {r.team for r in rows if r.role == "team"} == {"search", "ads"}
