"""Shared by the export tests: data spread over a month boundary, and the ledgers' own totals."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from finops.attribution.models import GpuLedgerRow
from finops.config import FinopsConfig
from finops.db import unit_of_work
from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import UsageRecord
from tests.support.configs import two_backend_config
from tests.support.records import make_record

# Two hours either side of midnight at the end of November: the month boundary splits them.
START = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
END = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
BOUNDARY = datetime(2026, 12, 1, tzinfo=UTC)
TEAMS = ("search", "ads", "=cmd")  # the third tries a spreadsheet formula


def config_for(db_url: str, **extra: Any) -> FinopsConfig:
    return two_backend_config(db_url, **extra)


def calls(
    n: int = 40, start: datetime = START + timedelta(minutes=75), prefix: str = "call"
) -> list[UsageRecord]:
    """Calls every ~4 minutes from 23:15 to about 01:55, some spanning midnight, odd amounts throughout."""
    made = []
    for i in range(n):
        started = start + timedelta(seconds=241 * i, microseconds=7919 * i)
        prompt_cost = 987_654_321 * i + 13 if i != 9 else 1_234_567_890_123
        completion_cost = 123_456_789 * (i % 7) + 5
        backend, model = (("gpu-a", "llama-8b"), ("gpu-b", "qwen-1b"))[i // 3 % 2]
        made.append(
            make_record(
                request_id=f"{prefix}-{i:04d}",
                started_at=started,
                ended_at=started + timedelta(seconds=20 + 37 * (i % 5)),
                team=TEAMS[i % 3],
                feature=("autocomplete", "summary")[i % 2],
                backend=backend,
                model=model,
                requested_model=model,
                prompt_tokens=100 * i + 7,
                completion_tokens=31 * i + 1,
                prompt_cost_nusd=prompt_cost,
                completion_cost_nusd=completion_cost,
                cost_nusd=prompt_cost + completion_cost,
                status_code=503 if i == 7 else 200,
                error_type="upstream_error" if i == 7 else None,
                latency_ms=12.5 + i,
            )
        )
    return made


def parse(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def total(rows: list[dict[str, str]], column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows if r[column] != ""), Decimal(0))


def usd(nusd: int) -> Decimal:
    return Decimal(nusd).scaleb(-9)


def token_ledger_nusd(
    engine: Engine, start: datetime, end: datetime, team: str | None = None, feature: str | None = None
) -> int:
    t = TokenLedgerRow
    filters = [t.started_at >= start, t.started_at < end]
    filters += [t.team == team] if team else []
    filters += [t.feature == feature] if feature else []
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.coalesce(func.sum(t.cost_nusd), 0)).where(*filters)))


def gpu_ledger_nusd(
    engine: Engine, start: datetime, end: datetime, team: str | None = None, feature: str | None = None
) -> int:
    """GPU cost in windows starting in [start, end): idle included unless a team or feature is given."""
    g = GpuLedgerRow
    filters = [g.window_start >= start, g.window_start < end]
    filters += [g.team == team] if team else []
    filters += [g.feature == feature] if feature else []
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.coalesce(func.sum(g.cost_nusd), 0)).where(*filters)))
