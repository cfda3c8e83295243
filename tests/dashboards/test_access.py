"""Nothing answers without a login, and a team member sees only its team, whatever it asks a callback.

Callbacks are called the way the browser calls them (POST /_dash-update-component), with every
callback the app registers (read from /_dash-dependencies), so a new page cannot slip through.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dashboards.format import usd
from dashboards.periods import resolve
from finops.db import make_engine, unit_of_work
from finops.rollups.queries import total_spend
from finops.traces.models import TraceCostRow
from tests.dashboards.support import login

PROTECTED_GETS = [
    "/",
    "/spend",
    "/traces?trace_id=x",
    "/_dash-layout",
    "/_dash-dependencies",
    "/assets/style.css",
]
# What support's numbers look like from outside: its team, features and budget.
SUPPORT_MARKS = ("support", "chatbot", "triage")


def outputs_of(dep: dict[str, Any]) -> Any:
    spec = dep["output"]
    if spec.startswith(".."):
        parts = spec[2:-2].split("...")
        return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]
    return dict(zip(("id", "property"), spec.rsplit(".", 1), strict=True))


def callback_body(dep: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The body the browser posts to /_dash-update-component for callback ``dep`` with input ``values``."""
    return {
        "output": dep["output"],
        "outputs": outputs_of(dep),
        "inputs": [{**i, "value": values.get(i["id"])} for i in dep["inputs"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]],
        "state": [],
    }


def call(client: httpx.Client, base: str, dep: dict[str, Any], values: dict[str, Any]) -> httpx.Response:
    return client.post(base + "/_dash-update-component", json=callback_body(dep, values))


def support_trace(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        with unit_of_work(engine) as session:
            return session.scalars(
                select(TraceCostRow.trace_id).where(TraceCostRow.team == "support")
            ).first()
    finally:
        engine.dispose()


def inputs_asking_for_support(trace_id: str, by: str) -> dict[str, Any]:
    return {
        "url": None,
        "f-period": "30d",
        "f-team": "support",
        "f-feature": None,
        "f-model": None,
        "spend-by": by,
        "spend-basis": "tokens",
        "amp-unit": "cost",
        "trace-id": trace_id,
        "lat-by": "feature",
        "alerts-page": 1,
        "ov-budget": "support-monthly",
    }


def test_nothing_answers_without_a_login(loadgen_stack):
    base = loadgen_stack.base_url
    with httpx.Client() as anonymous:
        for path in PROTECTED_GETS:
            reply = anonymous.get(base + path, follow_redirects=False)
            assert reply.status_code in (302, 401), (path, reply.status_code)
            if reply.status_code == 302:
                assert reply.headers["location"].startswith("/login")
        deps_reply = anonymous.post(base + "/_dash-update-component", json={"output": "spend-body.children"})
        assert deps_reply.status_code == 401
        assert anonymous.get(base + "/login").status_code == 200

        # A wrong password gets the form back with a message, and no session.
        wrong = anonymous.post(base + "/login", data={"username": "admin", "password": "nope"})
        assert wrong.status_code == 200 and "Wrong user name or password" in wrong.text
        unknown = anonymous.post(base + "/login", data={"username": "mallory", "password": "nope"})
        assert "Wrong user name or password" in unknown.text
        assert "finops_session" not in anonymous.cookies

        # A forged cookie is not a session.
        anonymous.cookies.set("finops_session", "eyJ1c2VyIjoiYWRtaW4ifQ.forged.sig")
        assert anonymous.get(base + "/_dash-layout").status_code == 401


def test_login_redirects_only_within_the_site_and_logout_ends_the_session(loadgen_stack):
    base = loadgen_stack.base_url
    with httpx.Client() as client:
        reply = client.post(
            base + "/login",
            data={"username": "fin", "password": "finance-pass-2", "next": "https://evil.example/"},
            follow_redirects=False,
        )
        assert reply.status_code == 302 and reply.headers["location"] == "/"
        # Browsers read "/\\host" as "//host": no backslash or control character gets through.
        for target in ("/\\evil.example", "/\t/evil.example", "//evil.example"):
            again = client.post(
                base + "/login",
                data={"username": "fin", "password": "finance-pass-2", "next": target},
                follow_redirects=False,
            )
            assert again.status_code == 302 and again.headers["location"] == "/", target
        assert client.get(base + "/_dash-layout").status_code == 200
        client.get(base + "/logout")
        assert client.get(base + "/_dash-layout").status_code == 401
        back = client.get(base + "/spend?x=1", follow_redirects=False)
        assert back.headers["location"] == "/login?next=/spend%3Fx%3D1"


@pytest.mark.parametrize("by", ["team", "feature"])
def test_a_team_member_sees_only_its_team_through_every_callback(loadgen_stack, by):
    base = loadgen_stack.base_url
    trace_id = support_trace(loadgen_stack.db_url)
    assert trace_id
    values = inputs_asking_for_support(trace_id, by)
    with httpx.Client(timeout=60) as ana, httpx.Client(timeout=60) as admin:
        login(ana, base, "ana")
        login(admin, base, "admin")
        deps = ana.get(base + "/_dash-dependencies").json()
        assert len(deps) >= 10
        seen_support = 0
        for dep in deps:
            if dep["inputs"][0]["id"] == "url":
                continue  # the router only lays pages out: no numbers
            mine = call(ana, base, dep, values)
            assert mine.status_code in (200, 204), (dep["output"], mine.status_code, mine.text[:300])
            text = mine.text
            for mark in SUPPORT_MARKS:
                assert mark not in text, f"{dep['output']} showed {mark!r} to a search member: {text[:400]}"
            # The same request from an admin does show support: the check above could fail.
            theirs = call(admin, base, dep, values)
            seen_support += any(mark in theirs.text for mark in SUPPORT_MARKS)
        assert seen_support >= 5


def test_a_team_member_gets_its_own_numbers(loadgen_stack):
    base = loadgen_stack.base_url
    engine = make_engine(loadgen_stack.db_url)
    with httpx.Client(timeout=60) as ana:
        login(ana, base, "ana")
        deps = {d["output"]: d for d in ana.get(base + "/_dash-dependencies").json()}
        values = inputs_asking_for_support("", "team") | {"f-team": None}
        reply = call(ana, base, deps["spend-body.children"], values)
        assert reply.status_code == 200
        period = resolve("30d", datetime.now(UTC))
        with unit_of_work(engine) as session:
            search = total_spend(session, period.start, period.end, team="search")
        assert usd(search.token_cost_nusd) in json.dumps(reply.json())
        options = call(ana, base, next(d for k, d in deps.items() if "f-team.options" in k), values)
        got = options.json()["response"]
        assert got["f-team"]["options"] == [{"label": "search", "value": "search"}]
        assert got["f-team"]["value"] == "search" and got["f-team"]["disabled"] is True
        assert {o["value"] for o in got["f-feature"]["options"]} == {"autocomplete", "qa"}
    engine.dispose()
