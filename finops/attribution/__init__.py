"""GPU-second attribution (pure, no I/O); the model and rounding rules are in ``gpu_seconds``."""

from finops.attribution.gpu_seconds import ONE_MINUTE_US, attribute_backend, attribute_backends
from finops.attribution.records import BackendRate, CallSpan, GpuRow
from finops.attribution.weights import TOKEN_RATE_SCALE, WeightFn, token_rate_weights

__all__ = [
    "ONE_MINUTE_US",
    "TOKEN_RATE_SCALE",
    "BackendRate",
    "CallSpan",
    "GpuRow",
    "WeightFn",
    "attribute_backend",
    "attribute_backends",
    "token_rate_weights",
]
