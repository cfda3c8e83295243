"""A durable local spool for ledger batches that could not reach the database.

Each batch is one JSON-lines file, written under a temporary name, fsynced, then renamed, so a crash
leaves either a whole batch or none. Replay claims a file by renaming it first, so two proxy processes
sharing a spool never replay the same file at once (and replay is idempotent on request_id anyway).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from finops.ledger.record import UsageRecord, record_from_json, record_to_json

BATCH_SUFFIX = ".jsonl"
# Records the database refused for their content: kept for an operator, never replayed.
DEAD_LETTER = "dead-letter.ndjson"
CLAIM_SUFFIX = ".replaying"


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._sequence = itertools.count()

    def _ensure_dir(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, records: Sequence[UsageRecord]) -> Path:
        self._ensure_dir()
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence):06d}"
        temporary = self.directory / (name + ".tmp")
        final = self.directory / (name + BATCH_SUFFIX)
        with open(temporary, "wb") as handle:
            for record in records:
                handle.write(record_to_json(record))
                handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        self._fsync_dir()
        return final

    def dead_letter(self, record: UsageRecord, reason: str) -> None:
        self._ensure_dir()
        with open(self.directory / DEAD_LETTER, "ab") as handle:
            handle.write(orjson.dumps({"reason": reason, "record": record._asdict()}))
            handle.write(b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*" + BATCH_SUFFIX))

    def pending_records(self) -> int:
        return sum(
            sum(1 for line in path.read_bytes().splitlines() if line.strip()) for path in self.pending()
        )

    def replay(self, insert: Callable[[list[UsageRecord]], object]) -> int:
        """Hand every spooled batch to ``insert``, oldest first; delete each once it is in.

        Stops at the first failure (the database is still away); that batch stays for the next replay.
        Returns the number of records replayed.
        """
        replayed = 0
        for path in self.pending():
            claimed = path.with_name(path.name + CLAIM_SUFFIX + f".{os.getpid()}")
            try:
                os.replace(path, claimed)
            except FileNotFoundError:
                continue  # another process claimed it
            try:
                records = [
                    record_from_json(line) for line in claimed.read_bytes().splitlines() if line.strip()
                ]
                insert(records)
            except BaseException:
                os.replace(claimed, path)  # give it back for the next attempt
                raise
            claimed.unlink()
            replayed += len(records)
        return replayed

    def recover_claims(self) -> None:
        """Return files claimed by a process that died mid-replay (at start-up, before any replay)."""
        if not self.directory.is_dir():
            return
        for claimed in self.directory.glob("*" + BATCH_SUFFIX + CLAIM_SUFFIX + ".*"):
            pid = claimed.name.rsplit(".", 1)[-1]
            if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
                continue
            original = claimed.name[: claimed.name.index(CLAIM_SUFFIX)]
            os.replace(claimed, claimed.with_name(original))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
