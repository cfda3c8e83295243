import orjson
from hypothesis import given
from hypothesis import strategies as st

from finops.proxy.sse import StreamTracker


def event(obj) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chat_stream(words, with_usage=True):
    chunks = [
        event(
            {
                "id": "c",
                "model": "served",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
            }
        )
    ]
    for word in words:
        chunks.append(
            event({"id": "c", "model": "served", "choices": [{"index": 0, "delta": {"content": word}}]})
        )
    chunks.append(
        event({"id": "c", "model": "served", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    if with_usage:
        chunks.append(
            event(
                {
                    "id": "c",
                    "model": "served",
                    "choices": [],
                    "usage": {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 7},
                }
            )
        )
    chunks.append(b"data: [DONE]\n\n")
    return chunks


def test_usage_chunk_is_removed_when_the_client_did_not_ask():
    stream = chat_stream([" a", " b"])
    tracker = StreamTracker(strip_usage=True)
    out = b"".join(tracker.feed(chunk, float(i)) for i, chunk in enumerate(stream))
    assert out == b"".join(stream[:-2]) + stream[-1]
    assert tracker.usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 7}
    assert tracker.first_token_at == 1.0
    assert tracker.finish_reason == "stop"
    assert tracker.model == "served"
    assert tracker.done


def test_usage_chunk_is_kept_when_asked_for():
    stream = chat_stream([" a"])
    tracker = StreamTracker(strip_usage=False)
    assert b"".join(tracker.feed(chunk, 0.0) for chunk in stream) == b"".join(stream)


@given(st.lists(st.sampled_from([" the", " cost", " of", "\n", " é"]), max_size=20), st.data())
def test_any_split_of_the_bytes_relays_the_same_events(words, data):
    stream = b"".join(chat_stream(words))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    tracker = StreamTracker(strip_usage=False)
    out = b"".join(tracker.feed(piece, 0.0) for piece in pieces) + tracker.flush()
    assert out == stream
    assert tracker.generated_text() == "".join(words)
    assert (tracker.first_token_at is not None) == any(words)


def test_malformed_events_are_relayed_and_counted():
    stream = [b"data: {not json\n\n", *chat_stream([" x"], with_usage=False)]
    tracker = StreamTracker(strip_usage=True)
    out = b"".join(tracker.feed(chunk, 0.0) for chunk in stream)
    assert out == b"".join(stream)
    assert tracker.malformed == 1
    assert tracker.usage is None
    assert tracker.generated_text() == " x"


def test_crlf_separated_events_are_relayed_event_by_event():
    stream = [chunk.replace(b"\n\n", b"\r\n\r\n") for chunk in chat_stream([" a", " b"])]
    tracker = StreamTracker(strip_usage=True)
    relayed = [tracker.feed(chunk, float(i)) for i, chunk in enumerate(stream)]
    assert relayed[1] == stream[1], "each event must go out as it arrives, not at the end"
    assert b"".join(relayed) == b"".join(stream[:-2]) + stream[-1]
    assert tracker.usage == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 7}
    assert tracker.first_token_at == 1.0


def test_an_error_event_marks_the_stream():
    tracker = StreamTracker(strip_usage=True)
    tracker.feed(b'data: {"error": {"message": "engine dead", "type": "InternalServerError"}}\n\n', 0.0)
    assert tracker.error_event
