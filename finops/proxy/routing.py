"""Which backend serves a call: the least busy of those serving the model, skipping refusers a while."""

from __future__ import annotations

import time
from collections.abc import Iterable

from finops.config import BackendConfig


class Backend:
    __slots__ = ("api_base", "config", "down_until", "in_flight", "name")

    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.name = config.name
        self.api_base = config.api_base
        self.in_flight = 0
        # Monotonic time until which a backend that refused a connection is not offered.
        self.down_until = 0.0


class Router:
    def __init__(self, backends: Iterable[BackendConfig], cooldown_s: float) -> None:
        self.backends = [Backend(config) for config in backends]
        self._cooldown_s = cooldown_s
        self._by_model: dict[str, list[Backend]] = {}
        for backend in self.backends:
            for model in backend.config.models:
                self._by_model.setdefault(model, []).append(backend)

    def serves(self, model: str) -> bool:
        return model in self._by_model

    def models(self) -> list[str]:
        return list(self._by_model)

    def candidates(self, model: str) -> list[Backend]:
        """Backends to try in order: healthy ones by fewest in flight, then cooling-down ones.

        Backends in cool-down are still tried last, so that a fleet that was all briefly down recovers on
        the next call instead of failing until the cool-down ends.
        """
        backends = self._by_model.get(model, [])
        if len(backends) == 1:
            return backends
        now = time.monotonic()
        healthy = [b for b in backends if b.down_until <= now]
        cooling = [b for b in backends if b.down_until > now]
        healthy.sort(key=lambda b: b.in_flight)
        cooling.sort(key=lambda b: b.down_until)
        return healthy + cooling

    def mark_down(self, backend: Backend) -> None:
        backend.down_until = time.monotonic() + self._cooldown_s

    def mark_up(self, backend: Backend) -> None:
        backend.down_until = 0.0
