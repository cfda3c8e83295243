"""Shared by the worker, job and report tests: the ledgers' invariants, checked against the database.

Every check recomputes what it expects from first principles (the token ledger's rows, each backend's
``gpus`` and ``usd_per_gpu_hour``) rather than from finops' own code, so that a bug in the engine, the
jobs or the rollups shows up as a difference, not as the same number computed twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from finops.attribution.models import GpuLedgerRow
from finops.config import FinopsConfig
from finops.jobs.models import JobStateRow
from finops.ledger.models import TokenLedgerRow
from finops.rollups.models import RollupDirtyHourRow, UsageRollupRow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
IDLE = ""


def us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def window_cost_nusd(gpus: Decimal, usd_per_gpu_hour: Decimal, start: datetime, end: datetime) -> int:
    """A window's cost as the design fixes it: whole nano-USD accrued at the backend's rate, anchored at
    the epoch, so consecutive windows add up to the exact cost of the period within one nano-USD."""
    nusd_per_us = Fraction(gpus) * Fraction(usd_per_gpu_hour) * 10**9 / (3600 * 10**6)
    return floor(nusd_per_us * us(end)) - floor(nusd_per_us * us(start))


# --- reading the tables ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def table_content(conn: Connection, model: Any) -> list[tuple[Any, ...]]:
    """Every row of a table without its surrogate id, sorted: equal lists mean equal tables."""
    columns = [c for c in model.__table__.columns if c.name != "id"]
    rows = [tuple(_plain(v) for v in row) for row in conn.execute(select(*columns))]
    return sorted(rows, key=lambda row: tuple((v is None, "" if v is None else str(v)) for v in row))


def gpu_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(GpuLedgerRow)))


def ledger_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(TokenLedgerRow).order_by(TokenLedgerRow.id)))


def job_states(conn: Connection) -> dict[str, dict[str, Any]]:
    import json

    return {row.name: json.loads(row.state) for row in conn.execute(select(JobStateRow))}


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one committed state of the database from its first read on,
    while a worker keeps committing beside it."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # pysqlite would otherwise read each statement on its own
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            yield conn
        finally:
            conn.rollback()


# --- the invariants ----------------------------------------------------------------------------------


@dataclass
class Summary:
    windows: int = 0
    gpu_rows: int = 0
    calls_with_gpu_rows: int = 0
    rollup_rows: int = 0
    totals: dict[str, Any] = field(default_factory=dict)


def check_gpu_ledger(conn: Connection, config: FinopsConfig, summary: Summary | None = None) -> Summary:
    """Per backend and window: one idle row, GPU time = gpus x window length and cost = the window's
    cost, exactly; windows contiguous and aligned; every call that ran on a GPU has a row in exactly the
    windows it overlaps, tagged like its ledger row; no row twice."""
    summary = summary or Summary()
    window_s = config.attribution.window_s
    window_us = window_s * 1_000_000
    backends = {b.name: b for b in config.backends}
    rows = gpu_rows(conn)
    summary.gpu_rows = len(rows)

    keys = Counter((r.backend, r.window_start, r.request_id) for r in rows)
    doubled = [k for k, n in keys.items() if n > 1]
    assert not doubled, f"{len(doubled)} GPU rows written twice, e.g. {doubled[:3]}"
    assert {r.backend for r in rows} <= set(backends), "GPU rows of a backend that is not configured"

    by_window: dict[tuple[str, datetime], list[Any]] = defaultdict(list)
    for r in rows:
        by_window[(r.backend, r.window_start)].append(r)
    for (name, start), window in sorted(by_window.items()):
        b = backends[name]
        end = window[0].window_end
        assert us(start) % window_us == 0 and us(end) - us(start) == window_us, (name, start, end)
        assert all(r.window_end == end for r in window), f"{name} {start}: rows with other window ends"
        idle = [r for r in window if r.request_id is None]
        assert len(idle) == 1, f"{name} {start}: {len(idle)} idle rows"
        assert all(r.gpu_seconds >= 0 and r.cost_nusd >= 0 for r in window), f"{name} {start}: a negative row"
        gpu_seconds = sum((Decimal(r.gpu_seconds) for r in window), Decimal(0))
        assert gpu_seconds == b.gpus * window_s, (
            f"{name} {start}: {gpu_seconds} GPU-s, not {b.gpus * window_s}"
        )
        cost = sum(r.cost_nusd for r in window)
        assert cost == window_cost_nusd(b.gpus, b.usd_per_gpu_hour, start, end), f"{name} {start}: {cost}"
    summary.windows = len(by_window)

    for name in {n for n, _ in by_window}:
        starts = sorted(us(s) for n, s in by_window if n == name)
        missing = (starts[-1] - starts[0]) // window_us + 1 - len(starts)
        assert missing == 0, f"{name}: {missing} windows missing between its first and last"

    calls = {c.request_id: c for c in ledger_rows(conn)}
    windows_of: dict[str, set[datetime]] = defaultdict(set)
    for r in rows:
        if r.request_id is None:
            continue
        call = calls.get(r.request_id)
        assert call is not None, f"GPU row of {r.request_id}, which is not in the token ledger"
        tags, ledger_tags = (
            (r.backend, r.team, r.feature, r.model),
            (call.backend, call.team, call.feature, call.model),
        )
        assert tags == ledger_tags, f"GPU row of {r.request_id} tagged {tags}, its ledger row {ledger_tags}"
        windows_of[r.request_id].add(r.window_start)
    on_gpu = [
        c
        for c in calls.values()
        if c.backend in backends and c.error_type != "upstream_unreachable" and c.ended_at > c.started_at
    ]
    for c in on_gpu:
        first = us(c.started_at) // window_us
        last = -(-us(c.ended_at) // window_us)
        expected = {EPOCH + timedelta(microseconds=k * window_us) for k in range(first, last)}
        assert windows_of.get(c.request_id) == expected, (
            f"call {c.request_id} ({c.started_at} to {c.ended_at} on {c.backend}) has GPU rows in "
            f"{sorted(windows_of.get(c.request_id, ()))}, not in its windows {sorted(expected)}"
        )
    strays = set(windows_of) - {c.request_id for c in on_gpu}
    assert not strays, f"GPU rows for calls that never ran on a GPU: {sorted(strays)[:3]}"
    summary.calls_with_gpu_rows = len(windows_of)
    return summary


ROLLUP_FIELDS = (
    "calls",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "token_cost_nusd",
    "gpu_seconds",
    "gpu_cost_nusd",
    "idle_gpu_seconds",
    "idle_cost_nusd",
)


def expected_rollups(conn: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The hourly rollups recomputed in Python from both ledgers: tokens in the hour a call started, GPU
    time in the hour of its window, idle on its own line per backend."""
    expected: dict[tuple[Any, ...], dict[str, Any]] = {}

    def line(key: tuple[Any, ...]) -> dict[str, Any]:
        zero = {f: 0 for f in ROLLUP_FIELDS}
        zero.update(gpu_seconds=Decimal(0), idle_gpu_seconds=Decimal(0))
        return expected.setdefault(key, zero)

    for c in ledger_rows(conn):
        t = line((hour_of(c.started_at), c.team, c.feature, c.model, c.backend or IDLE))
        t["calls"] += 1
        t["errors"] += int(c.status_code >= 400)
        t["prompt_tokens"] += c.prompt_tokens
        t["completion_tokens"] += c.completion_tokens
        t["token_cost_nusd"] += c.cost_nusd
    for r in gpu_rows(conn):
        hour = hour_of(r.window_start)
        if r.request_id is None:
            t = line((hour, IDLE, IDLE, IDLE, r.backend))
            t["idle_gpu_seconds"] += Decimal(r.gpu_seconds)
            t["idle_cost_nusd"] += r.cost_nusd
        else:
            t = line((hour, r.team, r.feature, r.model, r.backend))
            t["gpu_seconds"] += Decimal(r.gpu_seconds)
            t["gpu_cost_nusd"] += r.cost_nusd
    return expected


def actual_rollups(conn: Connection) -> dict[tuple[Any, ...], dict[str, Any]]:
    actual: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in conn.execute(select(UsageRollupRow)):
        key = (r.hour, r.team, r.feature, r.model, r.backend)
        assert key not in actual, f"rollup line {key} twice"
        actual[key] = {f: getattr(r, f) for f in ROLLUP_FIELDS}
        for f in ("gpu_seconds", "idle_gpu_seconds"):
            actual[key][f] = Decimal(actual[key][f])
    return actual


def _diff(actual: dict[Any, dict[str, Any]], expected: dict[Any, dict[str, Any]]) -> str:
    """(Assertions in this module are not rewritten by pytest: say what differs.)"""
    lines = [f"rollups differ from the ledgers ({len(actual)} lines, {len(expected)} expected):"]
    lines += [f"  extra line {key}: {actual[key]}" for key in sorted(set(actual) - set(expected), key=str)]
    lines += [
        f"  missing line {key}: {expected[key]}" for key in sorted(set(expected) - set(actual), key=str)
    ]
    for key in sorted(set(actual) & set(expected), key=str):
        wrong = {
            f: (actual[key][f], expected[key][f]) for f in ROLLUP_FIELDS if actual[key][f] != expected[key][f]
        }
        if wrong:
            lines.append(f"  line {key}: (rolled up, from the ledgers) {wrong}")
    return "\n".join(lines[:40])


def check_rollups(conn: Connection, summary: Summary | None = None) -> Summary:
    """The rollups equal both ledgers, line by line and in total, to the nano-USD and micro-GPU-second."""
    summary = summary or Summary()
    actual, expected = actual_rollups(conn), expected_rollups(conn)
    assert actual == expected, _diff(actual, expected)
    ledger = conn.execute(
        select(
            func.count(),
            func.sum(TokenLedgerRow.prompt_tokens),
            func.sum(TokenLedgerRow.completion_tokens),
            func.sum(TokenLedgerRow.cost_nusd),
        )
    ).one()
    gpu = gpu_rows(conn)
    totals = {
        f: sum((t[f] for t in actual.values()), Decimal(0) if "seconds" in f else 0) for f in ROLLUP_FIELDS
    }
    # The same totals, summed the other way (in SQL over the token ledger, in Python over the GPU rows).
    busy = [r for r in gpu if r.request_id is not None]
    idle = [r for r in gpu if r.request_id is None]
    from_ledgers = {
        "calls": ledger[0],
        "prompt_tokens": ledger[1] or 0,
        "completion_tokens": ledger[2] or 0,
        "token_cost_nusd": ledger[3] or 0,
        "gpu_seconds": sum((Decimal(r.gpu_seconds) for r in busy), Decimal(0)),
        "gpu_cost_nusd": sum(r.cost_nusd for r in busy),
        "idle_gpu_seconds": sum((Decimal(r.gpu_seconds) for r in idle), Decimal(0)),
        "idle_cost_nusd": sum(r.cost_nusd for r in idle),
    }
    rolled = {f: totals[f] for f in from_ledgers}
    assert rolled == from_ledgers, f"rollup totals {rolled} != ledger totals {from_ledgers}"
    summary.rollup_rows = len(actual)
    summary.totals = totals
    return summary


def check_all(conn: Connection, config: FinopsConfig) -> Summary:
    summary = check_gpu_ledger(conn, config)
    return check_rollups(conn, summary)


def settled(conn: Connection, config: FinopsConfig) -> tuple[bool, str]:
    """Have the jobs caught up with every ledger row and every window those rows touch?"""
    max_id = conn.scalar(select(func.max(TokenLedgerRow.id))) or 0
    states = job_states(conn)
    attribution, rollups = states.get("attribution", {}), states.get("rollups", {})
    window_us = config.attribution.window_s * 1_000_000
    ends = dict(
        conn.execute(
            select(TokenLedgerRow.backend, func.max(TokenLedgerRow.ended_at)).group_by(TokenLedgerRow.backend)
        ).all()
    )
    needed = {
        b.name: -(-us(ends[b.name]) // window_us) * window_us for b in config.backends if ends.get(b.name)
    }
    done = attribution.get("attributed_until_us", {})
    dirty = conn.scalar(select(func.count()).select_from(RollupDirtyHourRow))
    ready = (
        attribution.get("last_ledger_id", 0) >= max_id
        and rollups.get("last_ledger_id", 0) >= max_id
        and all(done.get(name, 0) >= until for name, until in needed.items())
        and dirty == 0
    )
    return ready, f"ledger max id {max_id}, job states {states}, windows needed {needed}, dirty hours {dirty}"


def wait_settled(engine: Engine, config: FinopsConfig, timeout_s: float, log: Callable[[], str]) -> Summary:
    """Wait until a committed state has every ledger row attributed and rolled up, then check the
    invariants on that very state (a worker keeps committing new idle windows every second)."""
    deadline = time.monotonic() + timeout_s
    status = "nothing read yet"
    while True:
        with snapshot(engine) as conn:
            ready, status = settled(conn, config)
            if ready:
                return check_all(conn, config)
        if time.monotonic() > deadline:
            raise AssertionError(f"the jobs did not catch up within {timeout_s} s: {status}\nlog:\n{log()}")
        time.sleep(0.002)


# --- processes ---------------------------------------------------------------------------------------


class Finops:
    """A ``finops`` subprocess in its own process group, so that stopping it stops its children too
    (a prefork worker's pool), and its log for assertion messages."""

    def __init__(self, args: Sequence[str], log_path: Path, cwd: Path | None = None) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "finops.cli", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def wait(self, timeout_s: float = 60.0) -> int:
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"finops {' '.join(self.args)} ran over {timeout_s} s:\n{self.log()}"
            ) from None

    def stop(self, timeout_s: float = 15.0) -> int:
        return stop_all([self], timeout_s)[0]


def stop_all(processes: Sequence[Finops], timeout_s: float = 15.0) -> list[int]:
    """SIGTERM to every one at once (a Celery warm shutdown, which waits for its pool), then SIGKILL to
    the whole group of any that lingers: killed while its leader is not reaped, so the group is ours."""
    for process in processes:
        if process.popen.poll() is None:
            process.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.popen.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()
        process._log.close()
    return [process.popen.returncode for process in processes]
