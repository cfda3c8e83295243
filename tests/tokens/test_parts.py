from hypothesis import given
from hypothesis import strategies as st

from finops.tokens.counting import count_chat_prompt
from finops.tokens.parts import PromptParts, count_parts, prompt_parts, scale_parts

RAG = [
    {"role": "system", "content": "You answer from the documents."},
    {"role": "user", "content": "What did we spend?"},
    {"role": "assistant", "content": "Which month?"},
    {"role": "user", "name": "context", "content": "Doc 1: November spend was 4,200 USD on search."},
    {"role": "tool", "content": '{"rows": 3}', "tool_call_id": "t1"},
    {"role": "user", "content": "November, please."},
]


def test_each_message_goes_to_its_part():
    parts = count_parts(RAG)
    assert parts.total == count_chat_prompt(RAG)
    just_user = count_parts([{"role": "user", "content": "November, please."}])
    assert parts.user == just_user.user
    assert parts.context > 0 and parts.history > 0 and parts.system > 3


def test_a_bare_prompt_is_all_user():
    assert prompt_parts([{"role": "user", "content": "hi"}], 9) == PromptParts(0, 0, 0, 9)


@given(st.lists(st.integers(0, 10_000), min_size=4, max_size=4), st.integers(0, 100_000))
def test_scaled_parts_add_up_exactly(counts, prompt_tokens):
    scaled = scale_parts(PromptParts(*counts), prompt_tokens)
    assert scaled.total == prompt_tokens
    total = sum(counts)
    if total:
        for exact_weight, got in zip(
            counts, (scaled.system, scaled.history, scaled.context, scaled.user), strict=True
        ):
            assert abs(got - prompt_tokens * exact_weight / total) < 1
