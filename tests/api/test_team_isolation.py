"""A team token never sees another team's data, whatever it asks for."""

from __future__ import annotations

import pytest

from tests.api.support import Api


def own_calls(api: Api, team: str) -> list:
    return [c for c in api.calls if c.team == team]


@pytest.mark.parametrize("by", ["team", "feature", "model", "backend"])
@pytest.mark.parametrize("basis", ["tokens", "gpu"])
def test_spend_is_forced_to_the_token_team(api: Api, by: str, basis: str):
    for team in ("search", "ads"):
        body = api.get("/spend", team, by=by, basis=basis, **api.period).json()
        assert body["team"] == team
        lines = body["items"]
        assert sum(line["calls"] for line in lines) == len(own_calls(api, team))
        assert sum(line["token_cost_nusd"] for line in lines) == sum(
            c.cost_nusd for c in own_calls(api, team)
        )
        # No idle line: idle GPU time is nobody's team.
        assert all(line["group"] != "(idle)" and line["idle_cost_nusd"] == 0 for line in lines)
        other = {c.feature for c in api.calls if c.team != team} | {"ads" if team == "search" else "search"}
        assert not {line["group"] for line in lines} & (other - {c.feature for c in own_calls(api, team)})


def test_team_token_asking_for_another_team_is_refused(api: Api):
    for path in ("/spend", "/traces/top"):
        response = api.get(path, "search", team="ads", **api.period)
        assert response.status_code == 403, path
        error = response.json()["error"]
        assert error["code"] == "forbidden" and error["field"] == "team"
        # Its own team by name is fine.
        assert api.get(path, "search", team="search", **api.period).status_code == 200


def test_traces_top_and_waterfall_are_team_scoped(api: Api):
    search = api.get("/traces/top", "search", **api.period).json()["items"]
    assert {t["team"] for t in search} == {"search"}
    assert {t["trace_id"] for t in search} == {c.trace_id for c in own_calls(api, "search")}
    ads = api.get("/traces/top", "ads", **api.period).json()["items"]
    assert [t["trace_id"] for t in ads] == ["ads-agent-1"]

    response = api.get("/traces/ads-agent-1", "search")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "ads" not in response.json()["error"]["message"].replace("ads-agent-1", "")
    assert api.get("/traces/ads-agent-1", "ads").status_code == 200
    assert api.get("/traces/search-rag-1", "ads").status_code == 404


def test_team_token_sees_only_its_own_team_and_no_keys(api: Api):
    teams = api.get("/teams", "search").json()["items"]
    assert [t["name"] for t in teams] == ["search"]
    assert [t["name"] for t in api.get("/teams", "ads").json()["items"]] == ["ads"]
    assert [t["name"] for t in api.get("/teams", "finance").json()["items"]] == ["ads", "search"]
    assert api.get("/keys", "search").status_code == 403


def test_team_token_responses_never_mention_another_team(api: Api):
    """Every read a team token can make, searched for the other team's names and ids."""
    foreign = {"ads", "ads-agent-1", "agent"}
    for by in ("team", "feature", "model", "backend"):
        text = api.get("/spend", "search", by=by, **api.period).text
        assert not any(f'"{name}"' in text for name in foreign), by
    for path in ("/traces/top", "/teams", "/health"):
        text = api.get(path, "search", **api.period).text
        assert not any(f'"{name}"' in text for name in foreign), path
