"""``finops report``: calls, tokens, token cost, GPU-seconds, GPU cost and idle cost for a period."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from finops.pricing.book import nusd_to_usd_string
from finops.rollups.queries import SpendLine, spend_by
from finops.rollups.service import hour_of
from finops.tables import render_table

HOUR = timedelta(hours=1)


def _usd(nusd: int) -> str:
    """Exact: every nano-USD shown, so the table adds up to the ledgers to the unit."""
    units, _, frac = nusd_to_usd_string(nusd).partition(".")
    return f"{int(units):,}.{frac}"


def render(lines: list[SpendLine], by: str, start: datetime, end: datetime) -> str:
    header = (
        by.upper(),
        "CALLS",
        "ERRORS",
        "PROMPT TOK",
        "COMPL TOK",
        "TOKEN USD",
        "GPU-SEC",
        "GPU USD",
        "IDLE GPU-SEC",
        "IDLE USD",
    )
    body = [
        (
            ln.group,
            f"{ln.calls:,}",
            f"{ln.errors:,}",
            f"{ln.prompt_tokens:,}",
            f"{ln.completion_tokens:,}",
            _usd(ln.token_cost_nusd),
            f"{ln.gpu_seconds:,.3f}",
            _usd(ln.gpu_cost_nusd),
            f"{ln.idle_gpu_seconds:,.3f}",
            _usd(ln.idle_cost_nusd),
        )
        for ln in lines
    ]
    total = (
        "TOTAL",
        f"{sum(ln.calls for ln in lines):,}",
        f"{sum(ln.errors for ln in lines):,}",
        f"{sum(ln.prompt_tokens for ln in lines):,}",
        f"{sum(ln.completion_tokens for ln in lines):,}",
        _usd(sum(ln.token_cost_nusd for ln in lines)),
        f"{sum(ln.gpu_seconds for ln in lines):,.3f}",
        _usd(sum(ln.gpu_cost_nusd for ln in lines)),
        f"{sum(ln.idle_gpu_seconds for ln in lines):,.3f}",
        _usd(sum(ln.idle_cost_nusd for ln in lines)),
    )
    title = (
        f"finops report {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC, by {by} "
        "(USD, exact to the nano-dollar)"
    )
    table = render_table(header, [*body, total], right=range(1, len(header)), rule_before_last=True)
    return f"{title}\n{table}"


def _report(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work
    from finops.jobs.registry import run_job

    config = config_from_args(args)
    if args.start is not None and args.end is not None and args.end <= args.start:
        print("finops report: --to must be after --from", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    start = (
        hour_of(args.start) if args.start else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    end = args.end or now
    try:
        end = hour_of(end) + (HOUR if end != hour_of(end) else timedelta(0))
    except OverflowError:
        print("finops report: --to is past the last hour a date can hold", file=sys.stderr)
        return 2
    if end <= start:
        print("finops report: --to must be after --from", file=sys.stderr)
        return 2
    with engine_scope(config.database_url) as engine:
        if not args.no_refresh:
            run_job(engine, config, "attribution")
            run_job(engine, config, "rollups")
        with unit_of_work(engine) as session:
            lines = spend_by(session, start, end, args.by)
    print(render(lines, args.by, start, end))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument
    from finops.worker.cli import parse_time

    parser = subparsers.add_parser("report", help="spend for a period as a terminal table")
    add_config_argument(parser)
    parser.add_argument(
        "--from",
        dest="start",
        type=parse_time,
        default=None,
        help="start (ISO 8601, UTC; rounded down to the hour; default: this month)",
    )
    parser.add_argument(
        "--to", dest="end", type=parse_time, default=None, help="end (rounded up to the hour; default: now)"
    )
    parser.add_argument("--by", choices=["team", "feature", "model", "backend"], default="team")
    parser.add_argument(
        "--no-refresh",
        action="store_true",
        help="do not run the attribution and rollup jobs first (report what is rolled up)",
    )
    parser.set_defaults(handler=_report)
