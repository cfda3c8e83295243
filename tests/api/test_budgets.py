"""Budgets through the API: finops.budgets.service's rules, the same as `finops budgets` enforces."""

from __future__ import annotations

from tests.api.support import Api

SEARCH = {"name": "search-monthly", "scope": {"team": "search"}, "monthly_usd": "250.5", "channels": ["log"]}


def post(api: Api, who: str, body: object):
    return api.client.post(api.url("/budgets"), headers=api.auth(who), json=body)


def patch(api: Api, who: str, name: str, body: object):
    return api.client.patch(api.url(f"/budgets/{name}"), headers=api.auth(who), json=body)


def test_create_read_change_delete(api: Api):
    created = post(api, "admin", SEARCH)
    assert created.status_code == 201, created.text
    budget = created.json()
    assert budget["scope"] == {"team": "search"}
    assert (budget["monthly_usd"], budget["monthly_nusd"]) == ("250.5", 250_500_000_000)
    assert budget["thresholds"] == ["0.5", "0.8", "1.0"]
    assert budget["source"] == "api" and budget["channels"] == ["log"]

    listed = {b["name"]: b for b in api.get("/budgets", "finance").json()["items"]}
    # The finops.yaml budget is synced in, as `finops budgets list` does.
    assert set(listed) == {"everything", "search-monthly"}
    assert listed["everything"]["source"] == "config"
    assert api.get("/budgets/search-monthly", "finance").json() == budget

    changed = patch(api, "admin", "search-monthly", {"monthly_usd": "300", "thresholds": ["0.9"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["monthly_nusd"] == 300 * 10**9 and changed.json()["thresholds"] == ["0.9"]
    renamed = patch(api, "admin", "search-monthly", {"name": "search-2"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "search-2"

    deleted = api.client.delete(api.url("/budgets/search-2"), headers=api.auth("admin"))
    assert deleted.status_code == 204 and deleted.content == b""
    gone = api.get("/budgets/search-2", "admin")
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "name"


def test_the_service_rules_name_the_field(api: Api):
    assert post(api, "admin", SEARCH).status_code == 201
    cases = [
        ({**SEARCH, "name": "other", "monthly_usd": "0"}, 422, "monthly_usd"),
        ({**SEARCH, "name": "other", "monthly_usd": "1.0000000001"}, 422, "monthly_usd"),
        ({**SEARCH, "name": "other", "monthly_usd": "1e30"}, 422, "monthly_usd"),
        ({**SEARCH, "name": "other", "channels": ["nowhere"]}, 422, "channels"),
        ({**SEARCH, "name": "other", "thresholds": ["0", "0.5"]}, 422, "thresholds"),
        ({**SEARCH, "name": "other", "basis": "vibes"}, 422, "basis"),
        ({**SEARCH, "name": "other", "colour": "red"}, 422, "colour"),
        ({**SEARCH, "name": " padded"}, 422, "name"),
        ({**SEARCH, "name": "nul\x00"}, 422, "name"),
        ({**SEARCH, "name": "other", "scope": {"team": "a\x00"}}, 422, "scope.team"),
        (SEARCH, 409, "name"),
    ]
    for body, status, field in cases:
        response = post(api, "admin", body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["field"] == field, (body, error)
        assert error["code"] == ("conflict" if status == 409 else "validation_error")


def test_config_budgets_are_changed_in_finops_yaml_only(api: Api):
    for response in (
        patch(api, "admin", "everything", {"monthly_usd": "1"}),
        api.client.delete(api.url("/budgets/everything"), headers=api.auth("admin")),
    ):
        assert response.status_code == 422
        assert "finops.yaml" in response.json()["error"]["message"]
    assert patch(api, "admin", "nothing-here", {"monthly_usd": "1"}).status_code == 404
    empty = patch(api, "admin", "everything", {})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "validation_error"


def test_roles_on_budgets(api: Api):
    assert post(api, "finance", SEARCH).status_code == 403
    assert post(api, "search", SEARCH).status_code == 403
    assert post(api, "admin", SEARCH).status_code == 201
    assert post(api, "admin", {**SEARCH, "name": "ads-monthly", "scope": {"team": "ads"}}).status_code == 201
    assert patch(api, "finance", "search-monthly", {"monthly_usd": "1"}).status_code == 403
    assert (
        api.client.delete(api.url("/budgets/search-monthly"), headers=api.auth("finance")).status_code == 403
    )
    assert api.get("/budgets", "search").status_code == 403
    # Standing: everyone reads it, a team only its own team's budgets.
    everyone = {s["name"] for s in api.get("/budgets/status", "finance").json()["items"]}
    assert everyone == {"everything", "search-monthly", "ads-monthly"}
    search = api.get("/budgets/status", "search").json()["items"]
    assert [s["name"] for s in search] == ["search-monthly"]
    status = search[0]
    assert status["scope"] == {"team": "search"} and status["amount_nusd"] == 250_500_000_000
    assert status["spend_nusd"] == sum(c.cost_nusd for c in api.calls if c.team == "search")


def test_api_and_cli_refuse_the_same_budget_the_same_way(api: Api, capsys, monkeypatch, tmp_path):
    """One rule in one place: the CLI and the API both go through finops.budgets.service."""
    from finops.cli import main

    monkeypatch.setenv("FINOPS_DATABASE_URL", api.config.database_url)
    monkeypatch.setenv("FINOPS_CHANNELS", "{log: {type: console}}")
    code = main(["budgets", "create", "cli-made", "--monthly-usd", "5", "--channels", "nowhere"])
    err = capsys.readouterr().err
    response = post(api, "admin", {"name": "cli-made", "monthly_usd": "5", "channels": ["nowhere"]})
    assert code != 0 and response.status_code == 422
    assert response.json()["error"]["message"].split(" (known")[0] in err
    assert main(["budgets", "create", "cli-made", "--monthly-usd", "5", "--team", "ads"]) == 0
    capsys.readouterr()
    made = api.get("/budgets/cli-made", "admin").json()
    assert made["scope"] == {"team": "ads"} and made["monthly_usd"] == "5"
