"""How a chat prompt divides into parts: system, history, context and the user's own last message.

Each message goes to one part:
- the last ``user`` message is the user's own query (``user``);
- ``tool`` and ``function`` messages, and any message named ``context`` (``{"role": "user", "name":
  "context", ...}`` is how a client marks retrieved text), are ``context``;
- ``system`` and ``developer`` messages are ``system``, and so is the fixed framing of the chat template
  (the reply priming), which no message owns;
- every other message (earlier turns, the assistant's own tool calls) is ``history``.

The parts are counted with tiktoken, then scaled so that they add up exactly to the backend's own
prompt token count (largest remainder; ties go to the part listed first in ``PARTS``): the backend's
tokenizer is the truth, tiktoken only tells the proportions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from finops.tokens.counting import TOKENS_REPLY_PRIMING, count_message

PARTS = ("user", "system", "history", "context")
_CONTEXT_ROLES = frozenset({"tool", "function"})
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True, slots=True)
class PromptParts:
    system: int
    history: int
    context: int
    user: int

    @property
    def total(self) -> int:
        return self.system + self.history + self.context + self.user


def _part_of(message: dict[str, Any], is_last_user: bool) -> str:
    role = message.get("role")
    if message.get("name") == "context" or role in _CONTEXT_ROLES:
        return "context"
    if is_last_user:
        return "user"
    if role in _SYSTEM_ROLES:
        return "system"
    return "history"


def is_bare(messages: Sequence[Any]) -> bool:
    """A prompt that is only the user's own message: all of it is the user part, nothing to count."""
    return (
        len(messages) == 1
        and isinstance(messages[0], dict)
        and messages[0].get("role") == "user"
        and messages[0].get("name") != "context"
    )


def count_parts(messages: Sequence[Any]) -> PromptParts:
    """tiktoken counts of each part, framing included (see the module docstring)."""
    last_user = max(
        (
            i
            for i, m in enumerate(messages)
            if isinstance(m, dict) and m.get("role") == "user" and m.get("name") != "context"
        ),
        default=-1,
    )
    counts = dict.fromkeys(PARTS, 0)
    counts["system"] = TOKENS_REPLY_PRIMING
    for index, message in enumerate(messages):
        if isinstance(message, dict):
            counts[_part_of(message, index == last_user)] += count_message(message)
    return PromptParts(counts["system"], counts["history"], counts["context"], counts["user"])


def scale_parts(counted: PromptParts, prompt_tokens: int) -> PromptParts:
    """Scale counted parts to add up exactly to ``prompt_tokens`` (largest remainder)."""
    weights = {
        "user": counted.user,
        "system": counted.system,
        "history": counted.history,
        "context": counted.context,
    }
    total = sum(weights.values())
    if total <= 0 or prompt_tokens <= 0:
        return PromptParts(0, 0, 0, max(prompt_tokens, 0))
    floors = {name: prompt_tokens * weight // total for name, weight in weights.items()}
    remainders = {name: prompt_tokens * weight % total for name, weight in weights.items()}
    missing = prompt_tokens - sum(floors.values())
    for name in sorted(PARTS, key=lambda n: (-remainders[n], PARTS.index(n)))[:missing]:
        floors[name] += 1
    return PromptParts(floors["system"], floors["history"], floors["context"], floors["user"])


def prompt_parts(messages: Sequence[Any], prompt_tokens: int) -> PromptParts:
    if is_bare(messages):
        return PromptParts(0, 0, 0, prompt_tokens)
    return scale_parts(count_parts(messages), prompt_tokens)
