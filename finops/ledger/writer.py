"""The batched ledger writer: the proxy hands it records and never waits on the database.

A background thread drains an in-memory queue in batches. While the database answers, batches go
straight in; when an insert fails the writer switches to the durable spool, and every
``replay_interval_s`` tries to replay the spool, switching back once it succeeds. Nothing is dropped:
a batch that can go neither to the database nor to the spool stays in memory and is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from finops.ledger.record import UsageRecord
from finops.ledger.spool import DEAD_LETTER, Spool
from finops.ledger.store import is_unavailable

log = logging.getLogger("finops.ledger")

Insert = Callable[[list[UsageRecord]], int]
Observer = Callable[[list[UsageRecord]], None]
# A record whose token counts still have to be computed (tiktoken), finished on the writer thread.
Deferred = Callable[[], UsageRecord]


@dataclass
class WriterStats:
    inserted_batches: int = 0
    inserted_records: int = 0
    spooled_records: int = 0
    replayed_records: int = 0
    database_failures: int = 0
    dead_lettered_records: int = 0


class LedgerWriter:
    def __init__(
        self,
        insert: Insert,
        spool: Spool,
        *,
        batch_size: int = 2000,
        flush_interval_s: float = 0.1,
        replay_interval_s: float = 2.0,
        observer: Observer | None = None,
    ) -> None:
        self._insert = insert
        self._observer = observer
        self._spool = spool
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._replay_interval_s = replay_interval_s
        self._queue: deque[UsageRecord | Deferred] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._database_down = False
        self._next_replay_at = 0.0
        self.stats = WriterStats()

    # -- called from the event loop: must stay O(1) and never block ------------------------------
    def submit(self, record: UsageRecord | Deferred) -> None:
        """Queue a record, or a function that makes one (run on the writer thread, off the request path)."""
        self._queue.append(record)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def database_down(self) -> bool:
        return self._database_down

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._spool.recover_claims()
        self._thread = threading.Thread(target=self._run, name="finops-ledger-writer", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Write out everything queued (database or spool) and stop the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error(
                    "ledger writer did not finish within %.0f s; %d records still queued",
                    timeout_s,
                    len(self._queue),
                )

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the queue is empty (for tests and orderly shutdown). True when it emptied."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        while self._queue and time.monotonic() < deadline:
            time.sleep(0.01)
            self._wake.set()
        return not self._queue

    # -- the writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        self._try_replay(force=True)
        while True:
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            stopping = self._stopping
            self._drain()
            self._try_replay()
            if stopping and not self._queue:
                return

    def _drain(self) -> None:
        while self._queue:
            batch: list[UsageRecord] = []
            while self._queue and len(batch) < self._batch_size:
                batch.append(self._finish(self._queue.popleft()))
            if not self._write(batch):
                # Neither the database nor the spool took it: put it back, in order, and wait.
                self._queue.extendleft(reversed(batch))
                time.sleep(min(1.0, self._replay_interval_s))
                return
            if self._observer is not None:
                try:
                    self._observer(batch)
                except Exception:
                    log.exception("ledger observer failed; the records are written regardless")

    @staticmethod
    def _finish(item: UsageRecord | Deferred) -> UsageRecord:
        # Deferred records never raise (the proxy wraps them with a fallback record).
        return item if isinstance(item, UsageRecord) else item()

    def _insert_isolating(self, batch: list[UsageRecord]) -> int:
        """Insert ``batch``. When the database refuses it for its content (not for being away), split it
        until the records it refuses are found: those go to the dead-letter file, the rest go in. One
        bad row must not hold up the ledger, nor be replayed from the spool forever."""
        try:
            return self._insert(batch)
        except Exception as exc:
            if is_unavailable(exc):
                raise
            if len(batch) == 1:
                self._spool.dead_letter(batch[0], _short(exc))
                self.stats.dead_lettered_records += 1
                log.error(
                    "the database refused ledger record %s (%s); kept in %s",
                    batch[0].request_id,
                    _short(exc),
                    self._spool.directory / DEAD_LETTER,
                )
                return 0
            middle = len(batch) // 2
            return self._insert_isolating(batch[:middle]) + self._insert_isolating(batch[middle:])

    def _write(self, batch: list[UsageRecord]) -> bool:
        if not self._database_down:
            try:
                inserted = self._insert_isolating(batch)
            except Exception as exc:
                self.stats.database_failures += 1
                self._database_down = True
                self._next_replay_at = time.monotonic() + self._replay_interval_s
                log.warning(
                    "ledger database unavailable (%s); spooling to %s", _short(exc), self._spool.directory
                )
            else:
                self.stats.inserted_batches += 1
                self.stats.inserted_records += max(inserted, 0)
                return True
        try:
            self._spool.write(batch)
        except OSError as exc:
            log.error("cannot spool %d ledger records (%s); keeping them in memory", len(batch), exc)
            return False
        self.stats.spooled_records += len(batch)
        return True

    def _try_replay(self, force: bool = False) -> None:
        if not force and not self._database_down:
            return
        if not force and time.monotonic() < self._next_replay_at:
            return
        try:
            replayed = self._spool.replay(self._insert_isolating)
        except Exception as exc:
            self._database_down = True
            self._next_replay_at = time.monotonic() + self._replay_interval_s
            log.debug("spool replay failed: %s", _short(exc))
            return
        if replayed:
            log.warning("database is back: replayed %d spooled ledger records", replayed)
        self.stats.replayed_records += replayed
        self._database_down = False


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
