"""Knobs of the vLLM stand-in: one frozen value, built by the CLI or by a test."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimSettings:
    """How the stand-in behaves for every request; ``X-Sim-*`` headers override a few per request.

    The rates are probabilities in [0, 1], drawn from one generator seeded by ``seed`` so that a run
    with the same request order faults the same requests.
    """

    models: tuple[str, ...] = ("llama-8b",)
    # Latency: time to the first output token, then the gap between each later token.
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    # The natural length of an answer; a smaller max_tokens cuts it short (finish_reason "length").
    output_tokens: int = 16
    error_rate: float = 0.0
    error_status: int = 500
    # Close the TCP connection mid-response (streams: after some chunks; otherwise before any byte).
    drop_rate: float = 0.0
    # Emit one SSE event whose data is not JSON, in the middle of a stream.
    malformed_rate: float = 0.0
    max_model_len: int = 8192
    embedding_dim: int = 8
    seed: int = 0
    # False: a backend that never reports usage, neither in bodies nor in streams.
    usage: bool = True

    def __post_init__(self) -> None:
        if not self.models or any(not model for model in self.models):
            raise ValueError("at least one non-empty model name is required")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"model names must be unique, got {list(self.models)}")
        for name in ("ttft_ms", "itl_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("error_rate", "drop_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if self.output_tokens < 1:
            raise ValueError(f"output_tokens must be >= 1, got {self.output_tokens}")
        if not 400 <= self.error_status <= 599:
            raise ValueError(f"error_status must be a 4xx or 5xx status, got {self.error_status}")
        if self.max_model_len < 2:
            raise ValueError(f"max_model_len must be >= 2, got {self.max_model_len}")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")

    @property
    def default_model(self) -> str:
        """What a request without ``model`` gets, as vLLM serves its first served name."""
        return self.models[0]
