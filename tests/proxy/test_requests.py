import orjson
import pytest

from finops.proxy.errors import ProxyError
from finops.proxy.requests import CHAT, COMPLETIONS, EMBEDDINGS, parse_request, upstream_body


def chat(**extra):
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra})


def test_plain_request_is_forwarded_byte_for_byte():
    body = chat()
    request = parse_request(CHAT, body)
    assert upstream_body(request, body) is body


def test_metadata_is_removed_and_stream_usage_requested():
    body = chat(stream=True, metadata={"team": "a"})
    request = parse_request(CHAT, body)
    assert request.stream and not request.wants_stream_usage
    forwarded = orjson.loads(upstream_body(request, body))
    assert "metadata" not in forwarded
    assert forwarded["stream_options"] == {"include_usage": True}


def test_client_that_asked_for_usage_keeps_its_options():
    body = chat(stream=True, stream_options={"include_usage": True, "continuous_usage_stats": True})
    request = parse_request(CHAT, body)
    assert request.wants_stream_usage
    assert upstream_body(request, body) is body


@pytest.mark.parametrize(
    ("endpoint", "body", "param"),
    [
        (CHAT, b"{not json", None),
        (CHAT, b"[]", None),
        (CHAT, b"", None),
        (CHAT, orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), "model"),
        (CHAT, orjson.dumps({"model": 5, "messages": []}), "model"),
        (CHAT, orjson.dumps({"model": "m"}), "messages"),
        (CHAT, orjson.dumps({"model": "m", "messages": "hi"}), "messages"),
        (CHAT, orjson.dumps({"model": "m", "messages": [{"content": "x"}]}), "messages[0]"),
        (CHAT, chat(stream="yes"), "stream"),
        (CHAT, chat(max_tokens=True), "max_tokens"),
        (CHAT, chat(max_tokens="10"), "max_tokens"),
        (CHAT, chat(metadata=["team"]), "metadata"),
        (COMPLETIONS, orjson.dumps({"model": "m"}), "prompt"),
        (COMPLETIONS, orjson.dumps({"model": "m", "prompt": 3}), "prompt"),
        (EMBEDDINGS, orjson.dumps({"model": "m"}), "input"),
        (EMBEDDINGS, orjson.dumps({"model": "m", "input": "x", "stream": True}), "stream"),
    ],
)
def test_bad_requests_are_400_naming_the_parameter(endpoint, body, param):
    with pytest.raises(ProxyError) as caught:
        parse_request(endpoint, body)
    assert caught.value.status == 400
    assert caught.value.param == param
    error = orjson.loads(caught.value.body())["error"]
    assert set(error) == {"message", "type", "param", "code"}
