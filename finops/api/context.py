"""What every request of the API shares: the config, one engine, and the hashing secret once read."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.db import unit_of_work
from finops.keys.service import hash_secret


class ApiContext:
    def __init__(self, config: FinopsConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self._secret: str | None = None
        self._lock = threading.Lock()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction per request: the endpoint is the boundary, services never commit."""
        with unit_of_work(self.engine) as session:
            yield session

    def secret(self) -> str:
        # The secret never changes once made, so one read serves the process's lifetime.
        with self._lock:
            if self._secret is None:
                with self.unit_of_work() as session:
                    self._secret = hash_secret(session, self.config)
            return self._secret


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.finops
    return context
