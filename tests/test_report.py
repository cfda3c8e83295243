"""``finops report``: the table's totals are the ledgers' totals, to the nano-dollar."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select

from finops.attribution.models import GpuLedgerRow
from finops.cli import main
from finops.config import FinopsConfig
from finops.db import make_engine
from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import UsageRecord
from finops.ledger.store import insert_records
from tests.support.configs import two_backend_config
from tests.support.records import make_record
from tests.worker.support import hour_of, snapshot

COLUMNS = (
    "group",
    "calls",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "token_cost_usd",
    "gpu_seconds",
    "gpu_cost_usd",
    "idle_gpu_seconds",
    "idle_cost_usd",
)


def config_for(db_url: str) -> FinopsConfig:
    return two_backend_config(db_url)


@pytest.fixture
def report_db(db_url: str, tmp_path: Path) -> Iterator[tuple[Engine, str, datetime]]:
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config_for(db_url).model_dump(mode="json", exclude_none=True)))
    engine = make_engine(db_url)
    # The last twenty minutes: the report's own refresh attributes up to now, a few dozen windows.
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    yield engine, str(path), base
    engine.dispose()


def calls(base: datetime) -> list[UsageRecord]:
    made = []
    for i in range(12):
        started = base + timedelta(seconds=37 * i, microseconds=1234 * i)
        prompt, completion = 100 * i + 7, 31 * i + 1
        # Odd amounts (and one past a thousand dollars) so that a single lost nano-dollar would show.
        cost = 1_234_567_890_123 if i == 5 else 987_654_321 * i + 13
        made.append(
            make_record(
                started_at=started,
                ended_at=started + timedelta(seconds=5 + 11 * i),
                team=("search", "ads", "unallocated")[i % 3],
                feature=("autocomplete", "summary")[i % 2],
                backend=("gpu-a", "gpu-b")[i // 2 % 2],
                model=("llama-8b", "qwen-1b")[i // 2 % 2],
                prompt_tokens=prompt,
                completion_tokens=completion,
                prompt_cost_nusd=cost - cost // 3,
                completion_cost_nusd=cost // 3,
                cost_nusd=cost,
                status_code=503 if i == 7 else 200,
                error_type="upstream_error" if i == 7 else None,
            )
        )
    return made


def report(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    code = main(["report", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = captured.out.splitlines()
    assert out[0].startswith("finops report ") and "exact to the nano-dollar" in out[0]
    header = re.split(r"\s{2,}", out[1].strip())
    assert header[1:] == [
        "CALLS",
        "ERRORS",
        "PROMPT TOK",
        "COMPL TOK",
        "TOKEN USD",
        "GPU-SEC",
        "GPU USD",
        "IDLE GPU-SEC",
        "IDLE USD",
    ]
    lines = {}
    for line in out[3:]:
        if set(line) == {"-"}:
            continue
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(COLUMNS), line
        lines[cells[0]] = parsed(dict(zip(COLUMNS, cells, strict=True)))
    return lines


def parsed(cells: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, cell in cells.items():
        plain = cell.replace(",", "")
        if name == "group":
            values[name] = cell
        elif name.endswith("_usd"):
            values[name.replace("_usd", "_nusd")] = int(Decimal(plain).scaleb(9))
        elif name.endswith("seconds"):
            values[name] = cell  # shown rounded to the millisecond: compared as text
        else:
            values[name] = int(plain)
    return values


def expected(engine: Engine, start: datetime, end: datetime, key: str | None) -> dict[str, dict[str, Any]]:
    """What the report must show, summed straight from the two ledgers over [start, end)."""
    lines: dict[str, dict[str, Any]] = {}

    def line(group: str) -> dict[str, Any]:
        return lines.setdefault(
            group,
            {
                "calls": 0,
                "errors": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "token_cost_nusd": 0,
                "gpu_seconds": Decimal(0),
                "gpu_cost_nusd": 0,
                "idle_gpu_seconds": Decimal(0),
                "idle_cost_nusd": 0,
            },
        )

    ledger, gpu = TokenLedgerRow, GpuLedgerRow
    with snapshot(engine) as conn:
        for c in conn.execute(select(ledger).where(ledger.started_at >= start, ledger.started_at < end)):
            t = line(getattr(c, key) if key else "TOTAL")
            t["calls"] += 1
            t["errors"] += int(c.status_code >= 400)
            t["prompt_tokens"] += c.prompt_tokens
            t["completion_tokens"] += c.completion_tokens
            t["token_cost_nusd"] += c.cost_nusd
        for r in conn.execute(select(gpu).where(gpu.window_start >= start, gpu.window_start < end)):
            if r.request_id is None:
                t = line(r.backend if key == "backend" else "(idle)" if key else "TOTAL")
                t["idle_gpu_seconds"] += Decimal(r.gpu_seconds)
                t["idle_cost_nusd"] += r.cost_nusd
            else:
                t = line(getattr(r, key) if key else "TOTAL")
                t["gpu_seconds"] += Decimal(r.gpu_seconds)
                t["gpu_cost_nusd"] += r.cost_nusd
    for t in lines.values():
        for name in ("gpu_seconds", "idle_gpu_seconds"):
            t[name] = f"{t[name]:,.3f}"
    return lines


@pytest.mark.parametrize("by", ["team", "backend"])
def test_the_report_adds_up_to_the_ledgers(report_db, capsys, by):
    engine, path, base = report_db
    insert_records(engine, calls(base))
    to = datetime.now(UTC).replace(minute=59)  # never on the hour: rounded up to the next one
    start, end = hour_of(base), hour_of(to) + timedelta(hours=1)
    shown = report(capsys, "--config", path, "--by", by, "--from", base.isoformat(), "--to", to.isoformat())
    total = shown.pop("TOTAL")
    assert {"group": "TOTAL", **expected(engine, start, end, None)["TOTAL"]} == total
    assert total["calls"] == 12 and total["errors"] == 1
    assert total["token_cost_nusd"] == sum(c.cost_nusd for c in calls(base))
    assert total["gpu_cost_nusd"] > 0 and total["idle_cost_nusd"] > 0
    groups = expected(engine, start, end, by)
    assert shown == {group: {"group": group, **values} for group, values in groups.items()}
    if by == "team":
        assert set(shown) == {"ads", "search", "unallocated", "(idle)"}
        assert shown["(idle)"]["calls"] == 0 and shown["(idle)"]["gpu_cost_nusd"] == 0
    else:
        assert set(shown) == {"gpu-a", "gpu-b"}


def test_no_refresh_reports_what_is_rolled_up_and_a_refresh_adds_new_calls(report_db, capsys):
    engine, path, base = report_db
    insert_records(engine, calls(base))
    window = ["--config", path, "--from", base.isoformat()]
    first = report(capsys, *window)["TOTAL"]
    insert_records(
        engine, [make_record(started_at=base + timedelta(minutes=3), backend="gpu-a", cost_nusd=5)]
    )
    assert report(capsys, *window, "--no-refresh")["TOTAL"] == first
    again = report(capsys, *window)["TOTAL"]
    assert (again["calls"], again["token_cost_nusd"]) == (first["calls"] + 1, first["token_cost_nusd"] + 5)


def test_to_before_from_is_refused(tmp_path, capsys):
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'never.db'}"}))
    code = main(["report", "--config", str(path), "--from", "2026-03-02T10:00", "--to", "2026-03-01T10:00"])
    assert code == 2
    assert "--to must be after --from" in capsys.readouterr().err
    assert not (tmp_path / "never.db").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--config", str(path), "--from", "last week"])
    assert exit_.value.code == 2


def test_to_before_from_within_one_hour_is_refused(tmp_path, capsys):
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump({"database_url": f"sqlite:///{tmp_path / 'never.db'}"}))
    code = main(["report", "--config", str(path), "--from", "2026-03-01T10:40", "--to", "2026-03-01T10:20"])
    assert code == 2
