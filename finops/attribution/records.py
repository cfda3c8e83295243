"""The values GPU-second attribution reads and writes: immutable, checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

# An exact non-binary quantity: config gives Decimal, tests like Fraction. Floats are refused because
# money and GPU counts must not carry binary rounding into the ledger.
ExactNumber = Decimal | Fraction | int


@dataclass(frozen=True, slots=True)
class CallSpan:
    """One call as the attribution sees it: when it held its backend and how much work it did.

    ``[start_us, end_us)`` in integer microseconds since the Unix epoch.
    """

    request_id: str
    backend: str
    start_us: int
    end_us: int
    prompt_tokens: int
    completion_tokens: int

    def __post_init__(self) -> None:
        if self.end_us < self.start_us:
            raise ValueError(f"call {self.request_id!r} ends before it starts")
        if self.prompt_tokens < 0 or self.completion_tokens < 0:
            raise ValueError(f"call {self.request_id!r} has a negative token count")

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


@dataclass(frozen=True, slots=True)
class BackendRate:
    """A backend's capacity and price: ``gpus`` GPUs (fractional for MIG slices) at ``usd_per_gpu_hour``."""

    name: str
    gpus: ExactNumber
    usd_per_gpu_hour: ExactNumber

    def __post_init__(self) -> None:
        if exact(self.gpus, "gpus") <= 0:
            raise ValueError(f"backend {self.name!r}: gpus must be positive")
        if exact(self.usd_per_gpu_hour, "usd_per_gpu_hour") < 0:
            raise ValueError(f"backend {self.name!r}: usd_per_gpu_hour must not be negative")

    @property
    def gpu_us_per_us(self) -> Fraction:
        """GPU-microseconds the backend supplies per microsecond of wall time."""
        return exact(self.gpus, "gpus")

    @property
    def nusd_per_us(self) -> Fraction:
        """Nano-USD the backend costs per microsecond of wall time: gpus x usd/h x 1e9 / 3.6e9."""
        return exact(self.gpus, "gpus") * exact(self.usd_per_gpu_hour, "usd_per_gpu_hour") * Fraction(5, 18)


class GpuRow(NamedTuple):
    """One line of the GPU-second ledger: a request's (or, with ``request_id`` None, idle) part of a window.

    ``gpu_us`` is micro-GPU-seconds, ``cost_nusd`` nano-USD. A NamedTuple rather than a dataclass
    because an attribution run builds about one per call and tuples are several times cheaper.
    """

    backend: str
    window_start_us: int
    window_end_us: int
    request_id: str | None
    gpu_us: int
    cost_nusd: int


def exact(value: ExactNumber, field: str) -> Fraction:
    """``value`` as a Fraction; floats and bools are refused, a non-finite Decimal too."""
    if isinstance(value, bool) or not isinstance(value, Decimal | Fraction | int):
        raise TypeError(f"{field} must be a Decimal, Fraction or int, not {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{field} must be finite, got {value}")
    return Fraction(value)
