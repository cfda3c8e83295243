"""A running stand-in and proxy for end-to-end tests, with helpers to read the ledger they wrote."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from finops.db import make_engine, unit_of_work
from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import COLUMNS
from tests.support.processes import Process, free_port

PRICES = {
    "llama-8b": {"input_per_mtok": "0.10", "output_per_mtok": "0.20"},
    "qwen-1b": {"input_per_mtok": "0.015", "output_per_mtok": "0.045", "cached_input_per_mtok": "0.005"},
}


def start_sim(tmp: Path, models: Sequence[str] = ("llama-8b", "qwen-1b"), *extra: str) -> tuple[Process, str]:
    port = free_port()
    args = ["sim", "--host", "127.0.0.1", "--port", str(port)]
    for model in models:
        args += ["--model", model]
    process = Process([*args, *extra], tmp / f"sim-{port}.log")
    url = f"http://127.0.0.1:{port}"
    process.wait_http(url + "/health")
    return process, url


class ProxyStack:
    def __init__(self, tmp: Path, db_url: str, backends: list[dict[str, Any]], **config: Any) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        settings: dict[str, Any] = {
            "database_url": db_url,
            "backends": backends,
            "prices": PRICES,
            "ledger": {
                "flush_interval_ms": 20,
                "spool_dir": str(tmp / f"spool-{self.port}"),
                "replay_interval_s": 0.3,
            },
            "proxy": {"refresh_interval_s": 0.5},
        }
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
        self.config_path = tmp / f"finops-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(settings))
        self.engine = make_engine(db_url)
        self.process: Process | None = None

    def start(self) -> ProxyStack:
        self.process = Process(
            ["proxy", "--config", str(self.config_path), "--port", str(self.port)],
            self.tmp / f"proxy-{self.port}.log",
        )
        self.process.wait_http(self.url + "/healthz")
        return self

    def stop(self, sig: int | None = None) -> int:
        assert self.process is not None
        code = self.process.stop(sig) if sig is not None else self.process.stop()
        return code

    def close(self) -> None:
        if self.process is not None:
            self.process.stop()
        self.engine.dispose()

    def rows(self) -> list[dict[str, Any]]:
        with unit_of_work(self.engine) as session:
            return [
                {name: getattr(row, name) for name in COLUMNS}
                for row in session.scalars(select(TokenLedgerRow).order_by(TokenLedgerRow.id))
            ]

    def row(self, request_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
        found = self.wait_rows(lambda rows: any(r["request_id"] == request_id for r in rows), timeout_s)
        return next(r for r in found if r["request_id"] == request_id)

    def wait_rows(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        rows = self.rows()
        while not predicate(rows):
            if time.monotonic() > deadline:
                log = self.process.log() if self.process else ""
                raise AssertionError(f"ledger never matched; {len(rows)} rows; proxy log:\n{log[-3000:]}")
            time.sleep(0.05)
            rows = self.rows()
        return rows


def backend(
    name: str, url: str, models: Sequence[str] = ("llama-8b", "qwen-1b"), **extra: Any
) -> dict[str, Any]:
    return {"name": name, "url": url, "models": list(models), "gpus": 1, "usd_per_gpu_hour": "2.0", **extra}
