"""One proxied call as the trace engine sees it, and the stage vocabulary that sorts calls into categories.

Stages come from the client's free-text ``X-FinOps-Stage`` header, so they are matched after trimming
and case-folding; a value outside the conventional set is "other" rather than an error, because the
proxy records whatever the client sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

CHAT: Final = "chat.completions"
COMPLETIONS: Final = "completions"
EMBEDDINGS: Final = "embeddings"

Category = Literal["generation", "retrieval", "tool_steps", "safety", "other"]
"""Where a call belongs by its stage and endpoint, before retries are taken out."""

GENERATION: Final = "generation"
RETRIEVAL: Final = "retrieval"
TOOL_STEPS: Final = "tool_steps"
SAFETY: Final = "safety"
OTHER: Final = "other"

_STAGE_CATEGORY: Final[dict[str, Category]] = {
    "generation": GENERATION,
    "retrieval": RETRIEVAL,
    "rerank": RETRIEVAL,
    "embedding": RETRIEVAL,
    "tool": TOOL_STEPS,
    "agent": TOOL_STEPS,
    "safety": SAFETY,
    "summarize": OTHER,
}


@dataclass(frozen=True, slots=True)
class TraceCall:
    """One call of a trace, with the ledger's numbers.

    ``system_tokens + history_tokens + context_tokens + user_tokens`` either equals ``prompt_tokens``
    or all four are 0; in the latter case the whole prompt counts as the user's own text (how
    completions and embeddings calls, and chat calls whose prompt could not be split, are read).
    ``prompt_cost_nusd`` and ``completion_cost_nusd`` are given together or not at all, and then add up
    to ``cost_nusd``; without them the cost is split in proportion to the token counts.
    """

    request_id: str
    started_at_us: int
    ended_at_us: int
    endpoint: str
    stage: str | None
    status_code: int
    prompt_tokens: int
    completion_tokens: int
    cost_nusd: int
    body_sha256: str | None = None
    retry_of: str | None = None
    system_tokens: int = 0
    history_tokens: int = 0
    context_tokens: int = 0
    user_tokens: int = 0
    prompt_cost_nusd: int | None = None
    completion_cost_nusd: int | None = None
    trace_id: str | None = None
    model: str | None = None
    team: str | None = None
    feature: str | None = None

    def __post_init__(self) -> None:
        # Bad input would not crash the engine, it would silently break the breakdown's exact sum.
        counts = (
            self.prompt_tokens,
            self.completion_tokens,
            self.cost_nusd,
            self.system_tokens,
            self.history_tokens,
            self.context_tokens,
            self.user_tokens,
        )
        if min(counts) < 0:
            raise ValueError(f"{self.request_id}: token counts and costs must not be negative")
        parts = self.system_tokens + self.history_tokens + self.context_tokens + self.user_tokens
        if parts and parts != self.prompt_tokens:
            raise ValueError(f"{self.request_id}: prompt parts add up to {parts}, not {self.prompt_tokens}")
        if (self.prompt_cost_nusd is None) != (self.completion_cost_nusd is None):
            raise ValueError(f"{self.request_id}: give both prompt and completion cost, or neither")
        if self.prompt_cost_nusd is not None and self.completion_cost_nusd is not None:
            if min(self.prompt_cost_nusd, self.completion_cost_nusd) < 0:
                raise ValueError(f"{self.request_id}: costs must not be negative")
            if self.prompt_cost_nusd + self.completion_cost_nusd != self.cost_nusd:
                raise ValueError(f"{self.request_id}: prompt and completion cost do not add up to cost_nusd")

    @property
    def succeeded(self) -> bool:
        # Only a 2xx answer delivered anything; 4xx, 5xx and 499 (client went away) are failures.
        return 200 <= self.status_code < 300

    @property
    def category(self) -> Category:
        return call_category(self.endpoint, self.stage)

    @property
    def expansion_tokens(self) -> int:
        """Prompt tokens that are not the user's own last message: system prompt, history, context."""
        return self.system_tokens + self.history_tokens + self.context_tokens

    def cost_split_nusd(self) -> tuple[int, int]:
        """(prompt, completion) cost in nano-USD, adding up to ``cost_nusd``."""
        if self.prompt_cost_nusd is not None and self.completion_cost_nusd is not None:
            return self.prompt_cost_nusd, self.completion_cost_nusd
        tokens = self.prompt_tokens + self.completion_tokens
        if not tokens:
            return self.cost_nusd, 0
        # Same rate for both sides, nearest nano-USD with an exact half going to the prompt.
        prompt_nusd = (2 * self.cost_nusd * self.prompt_tokens + tokens) // (2 * tokens)
        return prompt_nusd, self.cost_nusd - prompt_nusd


def normalize_stage(stage: str | None) -> str | None:
    """The stage as matched: trimmed and lower-cased; an empty value is no stage."""
    if stage is None:
        return None
    return stage.strip().lower() or None


# Cached: a deployment uses a handful of (endpoint, stage) pairs, and traces are closed by the million.
@lru_cache(maxsize=4096)
def call_category(endpoint: str, stage: str | None) -> Category:
    """The category of a call by stage, falling back on the endpoint when the client sent no stage.

    An embeddings call cannot generate, so one labelled "generation" (or unlabelled) is retrieval work.
    """
    normalized = normalize_stage(stage)
    if normalized is None:
        return RETRIEVAL if endpoint == EMBEDDINGS else GENERATION
    category = _STAGE_CATEGORY.get(normalized, OTHER)
    if category == GENERATION and endpoint == EMBEDDINGS:
        return RETRIEVAL
    return category
