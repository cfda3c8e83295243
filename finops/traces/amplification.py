"""Amplification factor of one trace: how many times the bare user query the whole pipeline cost.

**Trace.** Every proxied call sharing a trace id (``X-FinOps-Trace-Id`` or ``traceparent``); a call
without one is a trace of one. Calls are taken in trace order: by start time, then by request id, so
the result does not depend on the order the calls are handed in.

**Totals.** Total tokens = the sum over all calls of prompt + completion tokens; total cost = the sum
of their ``cost_nusd`` (exact integer nano-USD).

**Generation calls.** Chat and completions calls whose stage is "generation" or that carry no stage.
Stages are matched case-insensitively: retrieval, rerank and embedding are *retrieval* (so is an
embeddings call without a stage); tool and agent are *tool steps*; safety is *safety*; summarize and
any other value are *other*.

**Retries** (see ``finops.traces.retries``). A failed call (status outside 2xx, 499 included), or a
call repeating work already delivered (its ``X-FinOps-Retry-Of`` names an earlier call of the trace,
or its body hash equals an earlier call's), counts entirely as a retry: all its tokens and cost,
whatever its stage. Each call is marked with why: "header", "hash" or "failed". A successful call
repeating only failed attempts is the one that delivered, not a retry.

**Baseline.** What the query would have cost as one bare call: the user's own last message in the
first generation call, plus the output of the final successful generation call (retries left out:
the first and last generation calls that are not retries). In cost, each of those two parts is
priced as in the call it comes from: the user's share of the first call's prompt cost (prompt cost x
user tokens / prompt tokens, to the nearest nano-USD, an exact half rounded up), plus the whole
completion cost of the final call. A call's prompt/completion cost split is the ledger's; if absent,
the cost is split in proportion to the token counts (nearest nano-USD, a half to the prompt).

When a trace has no generation call that delivered:

- if it tried to generate (every generation call failed or was a repeat), the query got no answer:
  the baseline is 0 and the factor undefined, while its spend still shows in the breakdown and in
  the cost per query;
- if it never generates (a lone embeddings request, a retrieval-only pipeline), the whole first call
  that is not a retry is the baseline: the query's bare form is the first useful call it made, so a
  trace of one successful call of any kind has factor exactly 1;
- if every call is a retry (everything failed), the baseline is 0 and the factor is undefined.

**Amplification** = total tokens / baseline tokens, and total cost / baseline cost, as exact
fractions; None when the baseline is 0 (for cost also when the baseline calls were unpriced).

**Breakdown.** Every token and nano-USD of the trace lands in exactly one part, so
baseline + context_expansion + retries + tool_steps + safety + retrieval + other = total, exactly:

- *retries*: all of every retry call;
- *context_expansion*: the system prompt, history and retrieved or tool content in the prompts of
  generation calls (their prompt tokens other than the user's last message), at their prompt rate;
- *tool_steps*: all of tool and agent calls, and the agent-loop share of generation calls: the user
  message re-sent by every generation call after the first, and the output of every generation call
  before the last. Those shares only exist when a trace makes two or more generation calls, which
  means the model was called in a loop (an agent or a chain), so they are always counted here;
- *safety*, *retrieval*, *other*: all of the calls of those categories;
- *baseline*: as above.

Per call, the engine also keeps a mark for the waterfall: its category, its retry reason, the part
each of its three pieces (prompt expansion, user message, completion) went to, and its own breakdown
in tokens and nano-USD; the calls' breakdowns add up exactly to the trace's.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence
from dataclasses import dataclass
from fractions import Fraction
from operator import attrgetter
from typing import Final, Literal

from finops.traces.breakdown import (
    BASELINE,
    CONTEXT_EXPANSION,
    OTHER,
    PART_INDEX,
    PARTS,
    RETRIES,
    RETRIEVAL,
    SAFETY,
    TOOL_STEPS,
    Breakdown,
    Part,
)
from finops.traces.calls import GENERATION, Category, TraceCall, call_category
from finops.traces.retries import RetryReason, retry_reasons

BaselineSource = Literal["generation", "first_call", "none"]
"""Where the baseline came from: delivered generation calls, the fallback first call, or nowhere."""

# The part that takes all of a non-retry call, by category (generation calls are split instead).
_WHOLE_CALL_PART: Final[dict[Category, int]] = {
    "retrieval": RETRIEVAL,
    "tool_steps": TOOL_STEPS,
    "safety": SAFETY,
    "other": OTHER,
}

trace_order = attrgetter("started_at_us", "request_id")
"""Sort key giving the trace order of calls."""


@dataclass(frozen=True, slots=True)
class CallMark:
    """One call on the waterfall: what it is, whether it was a retry, and where its tokens went.

    A call's tokens fall in three pieces, each going to one part of the breakdown: the prompt beyond
    the user's message (system, history, context), the user's message, and the completion. A call
    that is not a delivered generation call sends all three to the same part.
    """

    call: TraceCall
    category: Category
    retry_reason: RetryReason | None
    expansion_to: Part
    user_to: Part
    completion_to: Part

    @property
    def is_retry(self) -> bool:
        return self.retry_reason is not None

    @property
    def tokens(self) -> Breakdown:
        return self._breakdowns()[0]

    @property
    def cost_nusd(self) -> Breakdown:
        return self._breakdowns()[1]

    def _breakdowns(self) -> tuple[Breakdown, Breakdown]:
        # Worked out on demand: a closing job would otherwise keep two objects per call it never reads.
        tokens = [0] * len(PARTS)
        cost = [0] * len(PARTS)
        _spread(
            self.call,
            tokens,
            cost,
            PART_INDEX[self.expansion_to],
            PART_INDEX[self.user_to],
            PART_INDEX[self.completion_to],
        )
        return Breakdown(*tokens), Breakdown(*cost)


@dataclass(frozen=True, slots=True)
class TraceCost:
    """The amplification of one trace and its additive breakdown, in tokens and in nano-USD."""

    trace_id: str
    first_call_at_us: int  # start of the earliest call
    last_call_at_us: int  # start of the latest call
    ended_at_us: int  # end of the call that finished last
    calls: int
    retries: int
    total_tokens: int
    baseline_tokens: int
    amplification_tokens: Fraction | None
    total_cost_nusd: int
    baseline_cost_nusd: int
    amplification_cost: Fraction | None
    baseline_source: BaselineSource
    tokens: Breakdown
    cost_nusd: Breakdown
    marks: tuple[CallMark, ...]  # in trace order


def compute(trace_id: str, calls: Iterable[TraceCall]) -> TraceCost:
    """The amplification and breakdown of the trace made of ``calls`` (any order, at least one)."""
    ordered = sorted(calls, key=trace_order)
    if not ordered:
        raise ValueError(f"trace {trace_id!r} has no calls")
    reasons = retry_reasons(ordered)
    categories = [call_category(call.endpoint, call.stage) for call in ordered]

    delivered_generation = [
        index
        for index, (category, reason) in enumerate(zip(categories, reasons, strict=True))
        if reason is None and category == GENERATION
    ]
    # -1 never matches an index: "no such call".
    first_generation = last_generation = whole_baseline = -1
    source: BaselineSource
    if delivered_generation:
        first_generation, last_generation = delivered_generation[0], delivered_generation[-1]
        source = "generation"
    elif GENERATION in categories:
        # Generation was tried and never delivered: no answer, so nothing to measure against.
        source = "none"
    else:
        whole_baseline = next((index for index, reason in enumerate(reasons) if reason is None), -1)
        source = "none" if whole_baseline < 0 else "first_call"

    token_totals = [0] * len(PARTS)
    cost_totals = [0] * len(PARTS)
    marks: list[CallMark] = []
    for index, call in enumerate(ordered):
        reason = reasons[index]
        category = categories[index]
        if reason is None and category == GENERATION:
            expansion_to = CONTEXT_EXPANSION
            user_to = BASELINE if index == first_generation else TOOL_STEPS
            completion_to = BASELINE if index == last_generation else TOOL_STEPS
        else:
            if reason is not None:
                expansion_to = RETRIES
            elif index == whole_baseline:
                expansion_to = BASELINE
            else:
                expansion_to = _WHOLE_CALL_PART[category]
            user_to = completion_to = expansion_to
        _spread(call, token_totals, cost_totals, expansion_to, user_to, completion_to)
        marks.append(
            CallMark(call, category, reason, PARTS[expansion_to], PARTS[user_to], PARTS[completion_to])
        )

    total_tokens = sum(token_totals)
    total_cost_nusd = sum(cost_totals)
    baseline_tokens = token_totals[BASELINE]
    baseline_cost_nusd = cost_totals[BASELINE]
    return TraceCost(
        trace_id=trace_id,
        first_call_at_us=ordered[0].started_at_us,
        last_call_at_us=ordered[-1].started_at_us,
        ended_at_us=max(call.ended_at_us for call in ordered),
        calls=len(ordered),
        retries=sum(reason is not None for reason in reasons),
        total_tokens=total_tokens,
        baseline_tokens=baseline_tokens,
        amplification_tokens=Fraction(total_tokens, baseline_tokens) if baseline_tokens else None,
        total_cost_nusd=total_cost_nusd,
        baseline_cost_nusd=baseline_cost_nusd,
        amplification_cost=Fraction(total_cost_nusd, baseline_cost_nusd) if baseline_cost_nusd else None,
        baseline_source=source,
        tokens=Breakdown(*token_totals),
        cost_nusd=Breakdown(*cost_totals),
        marks=tuple(marks),
    )


def _spread(
    call: TraceCall,
    tokens: MutableSequence[int],
    cost_nusd: MutableSequence[int],
    expansion_to: int,
    user_to: int,
    completion_to: int,
) -> None:
    """Add a call's tokens and cost to the parts its three pieces go to (indices into PARTS)."""
    if expansion_to == user_to == completion_to:
        # The whole call goes to one part: no split, hence no rounding.
        tokens[expansion_to] += call.prompt_tokens + call.completion_tokens
        cost_nusd[expansion_to] += call.cost_nusd
        return
    expansion_tokens = call.system_tokens + call.history_tokens + call.context_tokens
    user_tokens = call.prompt_tokens - expansion_tokens
    prompt_nusd, completion_nusd = call.cost_split_nusd()
    user_nusd = share_nusd(prompt_nusd, user_tokens, call.prompt_tokens)
    tokens[expansion_to] += expansion_tokens
    cost_nusd[expansion_to] += prompt_nusd - user_nusd
    tokens[user_to] += user_tokens
    cost_nusd[user_to] += user_nusd
    tokens[completion_to] += call.completion_tokens
    cost_nusd[completion_to] += completion_nusd


def share_nusd(amount_nusd: int, part_tokens: int, whole_tokens: int) -> int:
    """``amount_nusd x part / whole`` to the nearest nano-USD, an exact half rounded up.

    With no tokens to go by, the whole amount goes with the part (a bare call keeps factor 1).
    """
    if not whole_tokens:
        return amount_nusd
    return (2 * amount_nusd * part_tokens + whole_tokens) // (2 * whole_tokens)


def group_by_trace(calls: Iterable[TraceCall]) -> dict[str, list[TraceCall]]:
    """Calls by trace id; a call without one is its own trace, under its request id."""
    traces: dict[str, list[TraceCall]] = {}
    for call in calls:
        traces.setdefault(call.trace_id or call.request_id, []).append(call)
    return traces


def compute_all(calls: Iterable[TraceCall]) -> list[TraceCost]:
    """``compute`` for every trace among ``calls``, in order of first appearance."""
    return [compute(trace_id, members) for trace_id, members in group_by_trace(calls).items()]
