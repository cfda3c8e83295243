"""Helpers of the limits tests: configs with hard limits, a fake clock, Redis keys cleaned up."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis

from finops.config import FinopsConfig
from tests.support.processes import free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def config_with(budgets: list[dict[str, Any]], **extra: Any) -> FinopsConfig:
    return FinopsConfig.model_validate(
        {
            "backends": [
                {
                    "name": "gpu-a",
                    "url": "http://127.0.0.1:1",
                    "models": ["llama-8b"],
                    "gpus": 2,
                    "usd_per_gpu_hour": "3.6",
                }
            ],
            "budgets": budgets,
            **extra,
        }
    )


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now_s = at.timestamp()

    def __call__(self) -> float:
        return self.now_s

    def set(self, at: datetime) -> None:
        self.now_s = at.timestamp()


def delete_budget_keys(*names: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for name in names:
            keys = list(client.scan_iter(match=f"finops:limit:{name}:*"))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@contextmanager
def private_redis() -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """A redis-server of this test's own (the machine's Redis is never stopped)."""
    port = free_port()
    process = start_redis(port)
    try:
        yield process, f"redis://127.0.0.1:{port}/0", port
    finally:
        stop_redis(process)


def start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.02)
    client.close()
    return process


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)
