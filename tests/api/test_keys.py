"""Proxy keys through the API: the same service and rules as `finops keys`; a new key is shown once."""

from __future__ import annotations

from finops.db import unit_of_work
from finops.keys.hashing import key_hash
from finops.keys.service import active_key_table, hash_secret
from tests.api.support import Api


def post_key(api: Api, who: str, body: object):
    return api.client.post(api.url("/keys"), headers=api.auth(who), json=body)


def test_created_key_is_shown_once_and_opens_the_proxy(api: Api):
    response = post_key(api, "admin", {"team": "billing", "feature": "invoices", "name": "nightly job"})
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    assert created["key"].startswith("fo-")
    assert created["prefix"] == created["key"][:10]
    assert (created["team"], created["feature"], created["name"]) == ("billing", "invoices", "nightly job")
    # The proxy's own lookup knows it: same service, same hash.
    with unit_of_work(api.engine) as session:
        table = active_key_table(session)
        secret = hash_secret(session, api.config)
    assert table[key_hash(secret, created["key"])].team == "billing"
    listing = api.get("/keys", "finance", team="billing")
    assert listing.status_code == 200
    assert [k["id"] for k in listing.json()["items"]] == [created["id"]]
    assert created["key"] not in listing.text
    # A team is known once it has a key.
    teams = {t["name"]: t for t in api.get("/teams", "admin").json()["items"]}
    assert teams["billing"] == {"name": "billing", "active_keys": 1, "has_usage": False}
    assert teams["search"]["has_usage"] is True


def test_revoke_and_list_revoked(api: Api):
    created = post_key(api, "admin", {"team": "billing"}).json()
    response = api.client.post(api.url(f"/keys/{created['id']}/revoke"), headers=api.auth("admin"))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert "key" not in response.json()
    live = [k["id"] for k in api.get("/keys", "admin").json()["items"]]
    everything = [k["id"] for k in api.get("/keys", "admin", include_revoked=True).json()["items"]]
    assert created["id"] not in live and created["id"] in everything
    with unit_of_work(api.engine) as session:
        assert all(d.key_id != created["id"] for d in active_key_table(session).values())
    missing = api.client.post(api.url("/keys/key_000000000000/revoke"), headers=api.auth("admin"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert missing.json()["error"]["field"] == "key_id"


def test_key_validation_names_the_field(api: Api):
    cases = [
        ({}, "team"),
        ({"team": ""}, "team"),
        ({"team": "=cmd()"}, "team"),  # the tag rule of finops.proxy.tags, as for `finops keys`
        ({"team": "search", "feature": "x" * 129}, "feature"),
        ({"team": "search", "feature": "-rm"}, "feature"),
        ({"team": "search", "name": "a\x00b"}, "name"),
        ({"team": 5}, "team"),
    ]
    for body, field in cases:
        response = post_key(api, "admin", body)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["field"] == field, (body, error)
        assert error["message"]
    not_json = api.client.post(
        api.url("/keys"), headers={**api.auth("admin"), "content-type": "application/json"}, content=b"{"
    )
    assert not_json.status_code == 422
    assert not_json.json()["error"]["code"] == "validation_error"


def test_finance_may_read_keys_but_not_change_them(api: Api):
    assert api.get("/keys", "finance").status_code == 200
    refused = post_key(api, "finance", {"team": "billing"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    key_id = api.get("/keys", "finance").json()["items"][0]["id"]
    revoke = api.client.post(api.url(f"/keys/{key_id}/revoke"), headers=api.auth("finance"))
    assert revoke.status_code == 403
    assert api.get("/keys", "finance").json()["items"][0]["revoked_at"] is None


def test_keys_pages(api: Api):
    for i in range(4):
        assert post_key(api, "admin", {"team": "billing", "name": f"k{i}"}).status_code == 201
    names, offset = [], 0
    while offset is not None:
        page = api.get("/keys", "admin", team="billing", limit=3, offset=offset).json()
        names += [k["name"] for k in page["items"]]
        offset = page["next_offset"]
    assert names == ["k0", "k1", "k2", "k3"]
