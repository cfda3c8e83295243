"""What the proxy holds in memory: keys, prices, the router, the ledger writer, refreshed off-path.

The request path reads these attributes and never touches the database; a background task reloads
keys and prices every ``refresh_interval_s`` on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine

from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.keys.hashing import key_hash
from finops.keys.service import active_key_table, hash_secret
from finops.ledger.spool import Spool
from finops.ledger.store import insert_records
from finops.ledger.writer import LedgerWriter
from finops.limits.enforcer import LimitEnforcer
from finops.pricing.book import PriceBook
from finops.pricing.sync import load_price_book, price_book_from_config, sync_prices
from finops.proxy.metrics import ProxyMetrics
from finops.proxy.routing import Router
from finops.proxy.tags import KeyDefaults

log = logging.getLogger("finops.proxy")


@dataclass
class KeyTable:
    secret: str | None = None
    by_hash: dict[str, KeyDefaults] = field(default_factory=dict)
    loaded: bool = False

    def lookup(self, key: str) -> KeyDefaults | None:
        if self.secret is None:
            return None
        return self.by_hash.get(key_hash(self.secret, key))


def ledger_engine(config: FinopsConfig) -> Engine:
    if config.database_url.startswith("postgresql"):
        # Fail fast while Postgres is away, so batches reach the spool instead of waiting.
        return make_engine(
            config.database_url, pool_size=2, max_overflow=2, connect_args={"connect_timeout": 3}
        )
    return make_engine(config.database_url)


class ProxyState:
    def __init__(self, config: FinopsConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or ledger_engine(config)
        self.router = Router(config.backends, config.proxy.backend_cooldown_s)
        self.prices: PriceBook = price_book_from_config(config)
        self.keys = KeyTable()
        self.metrics = ProxyMetrics()
        self.metrics.call_events.context_limits = dict(config.observability.context_limit_tokens)
        self.writer = LedgerWriter(
            lambda records: insert_records(self.engine, records),
            Spool(config.ledger.spool_dir),
            batch_size=config.ledger.batch_size,
            flush_interval_s=config.ledger.flush_interval_ms / 1000.0,
            replay_interval_s=config.ledger.replay_interval_s,
            observer=self.metrics.observe,
        )
        for backend in self.router.backends:
            self.metrics.bind_in_flight(backend.name, lambda b=backend: float(b.in_flight))  # type: ignore[misc]
        self.limits = LimitEnforcer(config, self.metrics.registry)
        self._refresher: asyncio.Task[None] | None = None

    def refresh_from_database(self) -> None:
        """Sync the config's prices into the price book table, then reload prices and keys (blocking)."""
        with unit_of_work(self.engine) as session:
            sync_prices(session, self.config)
            prices = load_price_book(session)
            secret = hash_secret(session, self.config)
            keys = active_key_table(session)
        self.prices = prices
        self.keys = KeyTable(secret, keys, loaded=True)
        self.limits.refresh(self.engine)

    async def _refresh_once(self) -> None:
        try:
            await asyncio.to_thread(self.refresh_from_database)
        except Exception as exc:
            log.warning(
                "could not load keys and prices from the database (%s: %s); keeping the last ones",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.proxy.refresh_interval_s)
            await self._refresh_once()

    async def start(self) -> None:
        self.writer.start()
        self.limits.start()
        # Keys must be known before the first call is checked against them.
        await self._refresh_once()
        self._refresher = asyncio.create_task(self._refresh_loop(), name="finops-refresh")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        await asyncio.to_thread(self.writer.close)
        await asyncio.to_thread(self.limits.close)
        self.engine.dispose()
