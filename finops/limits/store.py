"""Spend counters per budget and period: Redis (shared by every proxy replica) or in-process.

Both only ever add (INCRBY): adds from many replicas, and reconciliation's correction, commute, so no
update is lost whatever the interleaving. A counter expires a while after its period ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import redis


class StoreUnavailable(Exception):
    """The counter store could not be reached (Redis down, timed out, refused)."""


class CounterStore(Protocol):
    @property
    def shared(self) -> bool:
        """True when other processes see the same counters (Redis)."""
        ...

    def add(self, increments: Mapping[str, int], expire_at_s: Mapping[str, int]) -> dict[str, int]:
        """Add to each counter atomically; set its expiry (epoch seconds); return the new values."""
        ...

    def get(self, keys: Sequence[str]) -> dict[str, int]:
        """Current values (0 for a counter that does not exist)."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """The embedded default (one proxy, no Redis): counters in this process, lost on restart
    (the proxy reconciles them from the ledger when it starts, and periodically)."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._values: dict[str, int] = {}
        self._expire_at_s: dict[str, int] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._next_expiry_s = float("inf")

    def add(self, increments: Mapping[str, int], expire_at_s: Mapping[str, int]) -> dict[str, int]:
        with self._lock:
            self._expire(self._clock())
            out = {}
            for key, amount in increments.items():
                out[key] = self._values[key] = self._values.get(key, 0) + amount
                if key in expire_at_s:
                    self._expire_at_s[key] = expire_at_s[key]
                    self._next_expiry_s = min(self._next_expiry_s, expire_at_s[key])
            return out

    def get(self, keys: Sequence[str]) -> dict[str, int]:
        with self._lock:
            self._expire(self._clock())
            return {key: self._values.get(key, 0) for key in keys}

    def _expire(self, now_s: float) -> None:
        if now_s < self._next_expiry_s:
            return
        later = [at for at in self._expire_at_s.values() if at > now_s]
        self._next_expiry_s = min(later, default=float("inf"))
        for key in [k for k, at in self._expire_at_s.items() if at <= now_s]:
            del self._expire_at_s[key]
            self._values.pop(key, None)

    def close(self) -> None:
        pass


class RedisStore:
    """Counters in Redis, shared by every proxy replica and the reconciliation job.

    Blocking calls with a short timeout: the proxy calls this only from its limits thread, never from
    the event loop.
    """

    shared = True

    def __init__(self, url: str, timeout_s: float = 0.25) -> None:
        self.url = url
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )

    def add(self, increments: Mapping[str, int], expire_at_s: Mapping[str, int]) -> dict[str, int]:
        keys = list(increments)
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.incrby(key, increments[key])
                if key in expire_at_s:
                    pipe.expireat(key, expire_at_s[key])
            replies = pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(_short(exc)) from exc
        values = iter(replies)
        out = {}
        for key in keys:
            out[key] = int(next(values))
            if key in expire_at_s:
                next(values)
        return out

    def get(self, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        try:
            replies = self._client.mget(list(keys))
        except redis.RedisError as exc:
            raise StoreUnavailable(_short(exc)) from exc
        return {key: int(value) if value is not None else 0 for key, value in zip(keys, replies, strict=True)}

    def close(self) -> None:
        self._client.close()


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
