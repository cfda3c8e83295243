import pytest

from finops.proxy.errors import ProxyError
from finops.proxy.tags import UNALLOCATED, KeyDefaults, resolve_tags, trace_id_from_traceparent

KEY = KeyDefaults("key_1", "search", "autocomplete")


def test_headers_win_over_metadata():
    tags = resolve_tags(
        {"x-finops-team": "search", "x-finops-feature": "chat"},
        {"team": "other", "feature": "other"},
        None,
        reject_untagged=True,
    )
    assert (tags.team, tags.feature) == ("search", "chat")


def test_metadata_supplies_tags_and_trace():
    tags = resolve_tags(
        {}, {"team": "ads", "feature": "copy", "trace_id": "t-1", "stage": "rag"}, None, reject_untagged=True
    )
    assert (tags.team, tags.feature, tags.trace_id, tags.stage) == ("ads", "copy", "t-1", "rag")


def test_reject_names_the_missing_tag():
    with pytest.raises(ProxyError) as caught:
        resolve_tags({"x-finops-team": "search"}, None, None, reject_untagged=True)
    assert caught.value.status == 400
    assert caught.value.param == "feature"
    assert caught.value.code == "missing_tag"
    assert "X-FinOps-Feature" in caught.value.message


def test_unallocated_policy_records_the_value():
    tags = resolve_tags({}, None, None, reject_untagged=False)
    assert (tags.team, tags.feature) == (UNALLOCATED, UNALLOCATED)


def test_key_supplies_team_and_default_feature():
    tags = resolve_tags({}, None, KEY, reject_untagged=True)
    assert (tags.team, tags.feature) == ("search", "autocomplete")
    tags = resolve_tags({"x-finops-feature": "summaries"}, None, KEY, reject_untagged=True)
    assert tags.feature == "summaries"


def test_key_team_cannot_be_overridden():
    with pytest.raises(ProxyError) as caught:
        resolve_tags({"x-finops-team": "ads"}, None, KEY, reject_untagged=True)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "bad", ["", "a" * 129, 'quote"d', "new\nline", 42, "=HYPERLINK(x)", "+1", "@sum", "-x"]
)
def test_bad_tag_values_are_refused(bad):
    with pytest.raises(ProxyError) as caught:
        resolve_tags({}, {"team": bad, "feature": "f"}, None, reject_untagged=True)
    assert caught.value.status == 400
    assert caught.value.param == "team"


def test_traceparent_supplies_the_trace_id():
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_from_traceparent(parent) == "4bf92f3577b34da6a3ce929d0e0e4736"
    tags = resolve_tags(
        {"traceparent": parent, "x-finops-team": "a", "x-finops-feature": "b"},
        None,
        None,
        reject_untagged=True,
    )
    assert tags.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    explicit = resolve_tags(
        {"traceparent": parent, "x-finops-trace-id": "mine", "x-finops-team": "a", "x-finops-feature": "b"},
        None,
        None,
        reject_untagged=True,
    )
    assert explicit.trace_id == "mine"
    assert trace_id_from_traceparent("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None
    assert trace_id_from_traceparent("garbage") is None


def test_stage_and_retry_of_fit_their_columns():
    ok = resolve_tags(
        {"x-finops-stage": "s" * 64, "x-finops-retry-of": "r" * 64},
        {"team": "a", "feature": "b"},
        None,
        reject_untagged=True,
    )
    assert (len(ok.stage), len(ok.retry_of)) == (64, 64)
    for header in ("x-finops-stage", "x-finops-retry-of"):
        with pytest.raises(ProxyError) as caught:
            resolve_tags({header: "s" * 65}, {"team": "a", "feature": "b"}, None, reject_untagged=True)
        assert caught.value.status == 400
