"""A mergeable quantile sketch with a stated relative error (log-bucketed, in the manner of DDSketch).

A value ``x`` above ``MIN_VALUE`` goes to bucket ``k = ceil(log_gamma(x))``, which holds the values in
``(gamma**(k-1), gamma**k]``; the bucket reports ``2 * gamma**k / (gamma + 1)``, which is within
``RELATIVE_ACCURACY`` of every value in it. Values at or below ``MIN_VALUE`` (and zero) are counted apart
and reported as 0. So a quantile read from the sketch is within ``RELATIVE_ACCURACY`` (1%) of the exact
quantile of the values sketched (relative to that exact value; absolute error at most ``MIN_VALUE`` for
values below it), whatever the distribution.

Counts are exact integers, so sketches merge by adding counts: the merge of the sketches of two sets is
the sketch of their union, bucket for bucket. That is what lets hourly sketches combine into days
without re-reading ledger rows.

The quantile is the "lower" one: for ``n`` values sorted ascending, quantile ``q`` is the value of rank
``floor(q * (n - 1))`` (0-based), an actual observation, never an interpolation between two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import orjson

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
# Latencies are in milliseconds: anything at or below a microsecond is reported as 0.
MIN_VALUE = 0.001


class SketchError(ValueError):
    """A stored sketch that cannot be read, or a value that cannot be sketched."""


def bucket_of(value: float) -> int:
    return math.ceil(math.log(value) / _LOG_GAMMA)


def bucket_value(key: int) -> float:
    """The value a bucket reports: the point of its range with equal relative error to both ends."""
    return 2.0 * GAMMA**key / (GAMMA + 1.0)


class Sketch:
    __slots__ = ("buckets", "zeros")

    def __init__(self, buckets: dict[int, int] | None = None, zeros: int = 0) -> None:
        self.buckets: dict[int, int] = buckets if buckets is not None else {}
        self.zeros = zeros

    @property
    def count(self) -> int:
        return self.zeros + sum(self.buckets.values())

    def add(self, value: float) -> None:
        if not value >= 0.0 or math.isinf(value):  # NaN fails the comparison
            raise SketchError(f"a latency must be a finite number >= 0, got {value!r}")
        if value <= MIN_VALUE:
            self.zeros += 1
            return
        # math.log's rounding can put a value that is exactly gamma**k one bucket too high: harmless,
        # the neighbouring bucket's representative is still within the stated error of it.
        key = bucket_of(value)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    def extend(self, values: Iterable[float]) -> Sketch:
        for value in values:
            self.add(value)
        return self

    def merge(self, other: Sketch) -> None:
        """Add ``other``'s counts into this sketch (``other`` is unchanged)."""
        self.zeros += other.zeros
        buckets = self.buckets
        for key, count in other.buckets.items():
            buckets[key] = buckets.get(key, 0) + count

    def quantile(self, q: float) -> float | None:
        """The value of rank ``floor(q * (count - 1))``, within RELATIVE_ACCURACY; None when empty."""
        if not 0.0 <= q <= 1.0:
            raise SketchError(f"a quantile must be within [0, 1], got {q!r}")
        total = self.count
        if total == 0:
            return None
        rank = math.floor(q * (total - 1))
        seen = self.zeros
        if rank < seen:
            return 0.0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if rank < seen:
                return bucket_value(key)
        raise AssertionError("unreachable: the rank is below the total count")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return self.zeros == other.zeros and {k: c for k, c in self.buckets.items() if c} == {
            k: c for k, c in other.buckets.items() if c
        }

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, zeros={self.zeros}, buckets={len(self.buckets)})"

    # -- storage ----------------------------------------------------------------------------------
    def to_json(self) -> str:
        """Compact text for a Text column: ``{"z": zeros, "k": [keys...], "c": [counts...]}``."""
        keys = sorted(k for k, c in self.buckets.items() if c)
        return orjson.dumps({"z": self.zeros, "k": keys, "c": [self.buckets[k] for k in keys]}).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Sketch:
        try:
            data = orjson.loads(text)
            zeros = data["z"]
            keys, counts = data["k"], data["c"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise SketchError(f"not a stored latency sketch: {exc}") from None
        if (
            not isinstance(zeros, int)
            or not isinstance(keys, list)
            or not isinstance(counts, list)
            or len(keys) != len(counts)
            or not all(isinstance(v, int) for v in (*keys, *counts))
            or zeros < 0
            or any(c < 0 for c in counts)
        ):
            raise SketchError(
                "not a stored latency sketch: keys and counts must be integer lists of one length"
            )
        return cls(dict(zip(keys, counts, strict=True)), zeros)


def merged(sketches: Iterable[Sketch]) -> Sketch:
    total = Sketch()
    for sketch in sketches:
        total.merge(sketch)
    return total
