"""The additive breakdown of a trace (or of one call): baseline plus the parts of the excess.

The same shape holds tokens and nano-USD; its parts always add up exactly to the total it splits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Final, Literal

Part = Literal["baseline", "context_expansion", "retries", "tool_steps", "safety", "retrieval", "other"]
PARTS: Final[tuple[Part, ...]] = (
    "baseline",
    "context_expansion",
    "retries",
    "tool_steps",
    "safety",
    "retrieval",
    "other",
)
# Positions in PARTS, for the engine's accumulators.
BASELINE, CONTEXT_EXPANSION, RETRIES, TOOL_STEPS, SAFETY, RETRIEVAL, OTHER = range(len(PARTS))
PART_INDEX: Final[dict[Part, int]] = {part: index for index, part in enumerate(PARTS)}


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Integer amounts (tokens or nano-USD) per part, in the order of ``PARTS``."""

    baseline: int = 0
    context_expansion: int = 0
    retries: int = 0
    tool_steps: int = 0
    safety: int = 0
    retrieval: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return (
            self.baseline
            + self.context_expansion
            + self.retries
            + self.tool_steps
            + self.safety
            + self.retrieval
            + self.other
        )

    @property
    def excess(self) -> int:
        """Everything above the baseline: what the pipeline added to the bare query."""
        return self.total - self.baseline

    def as_dict(self) -> dict[str, int]:
        return dict(zip(PARTS, self.values(), strict=True))

    def values(self) -> tuple[int, ...]:
        values: tuple[int, ...] = _values(self)
        return values

    @classmethod
    def sum(cls, items: Iterable[Breakdown]) -> Breakdown:
        totals = [0] * len(PARTS)
        for item in items:
            for index, value in enumerate(_values(item)):
                totals[index] += value
        return cls(*totals)


# attrgetter, not dataclasses.astuple: astuple deep-copies and is many times slower.
_values = attrgetter(*PARTS)
assert tuple(field.name for field in fields(Breakdown)) == PARTS
