"""``finops traces show|top|stats``: one query's waterfall, the costliest traces, amplification by group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import orjson
from sqlalchemy.orm import Session

from finops.pricing.book import nusd_to_usd_string
from finops.tables import render_table
from finops.traces.amplification import TraceCost
from finops.traces.breakdown import PARTS
from finops.traces.calls import TraceCall


def _factor(value: Fraction | None) -> str:
    return "n/a" if value is None else f"{float(value):.2f}x"


def _usd(nusd: int | Fraction) -> str:
    return nusd_to_usd_string(round(nusd))


def trace_document(cost: TraceCost) -> dict[str, Any]:
    """The trace as JSON: every call in time order with its marks, then factor and breakdown."""
    start_us = cost.first_call_at_us
    calls = []
    for mark in cost.marks:
        c = mark.call
        calls.append(
            {
                "request_id": c.request_id,
                "offset_ms": (c.started_at_us - start_us) / 1000,
                "duration_ms": (c.ended_at_us - c.started_at_us) / 1000,
                "stage": c.stage,
                "endpoint": c.endpoint,
                "model": c.model,
                "status_code": c.status_code,
                "prompt_parts": {
                    "system": c.system_tokens,
                    "history": c.history_tokens,
                    "context": c.context_tokens,
                    "user": c.user_tokens,
                },
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "cost_usd": nusd_to_usd_string(c.cost_nusd),
                "category": mark.category,
                "retry": mark.retry_reason,
                "tokens_to": mark.tokens.as_dict(),
            }
        )
    return {
        "trace_id": cost.trace_id,
        "calls": calls,
        "retries": cost.retries,
        "total_tokens": cost.total_tokens,
        "total_cost_usd": nusd_to_usd_string(cost.total_cost_nusd),
        "baseline_tokens": cost.baseline_tokens,
        "baseline_source": cost.baseline_source,
        "amplification_tokens": None if cost.amplification_tokens is None else str(cost.amplification_tokens),
        "amplification_cost": None if cost.amplification_cost is None else str(cost.amplification_cost),
        "breakdown_tokens": cost.tokens.as_dict(),
        "breakdown_cost_usd": {k: nusd_to_usd_string(v) for k, v in cost.cost_nusd.as_dict().items()},
    }


def render_trace(cost: TraceCost, calls: list[TraceCall]) -> str:
    team = calls[0].team if calls else ""
    lines = [
        f"trace {cost.trace_id}  team {team}  {cost.calls} calls, {cost.retries} retries",
        f"amplification {_factor(cost.amplification_tokens)} in tokens, {_factor(cost.amplification_cost)} "
        f"in cost  (baseline {cost.baseline_tokens:,} tokens from {cost.baseline_source})",
        "",
    ]
    header = (
        "+MS",
        "STAGE",
        "MODEL",
        "STATUS",
        "SYS",
        "HIST",
        "CTX",
        "USER",
        "OUT",
        "COST USD",
        "PART",
        "RETRY",
    )
    rows = []
    for mark in cost.marks:
        c = mark.call
        rows.append(
            (
                f"{(c.started_at_us - cost.first_call_at_us) / 1000:,.0f}",
                c.stage or "-",
                c.model or "-",
                str(c.status_code),
                f"{c.system_tokens:,}",
                f"{c.history_tokens:,}",
                f"{c.context_tokens:,}",
                f"{c.user_tokens:,}",
                f"{c.completion_tokens:,}",
                nusd_to_usd_string(c.cost_nusd),
                mark.category,
                mark.retry_reason or "",
            )
        )
    lines.append(render_table(header, rows, right=(0, 3, 4, 5, 6, 7, 8, 9)))
    lines.append("")
    tokens, nusd = cost.tokens.as_dict(), cost.cost_nusd.as_dict()
    for part in PARTS:
        lines.append(f"  {part:<18} {tokens[part]:>12,} tokens  {nusd_to_usd_string(nusd[part]):>16} USD")
    lines.append(
        f"  {'total':<18} {cost.total_tokens:>12,} tokens  {nusd_to_usd_string(cost.total_cost_nusd):>16} USD"
    )
    return "\n".join(lines)


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    with engine_scope(config_from_args(args).database_url) as engine, unit_of_work(engine) as session:
        yield session


def _show(args: argparse.Namespace) -> int:
    from finops.traces.service import compute_trace

    with _session(args) as session:
        found = compute_trace(session, args.trace_id)
    if found is None:
        print(f"finops traces: no calls with trace id {args.trace_id!r}", file=sys.stderr)
        return 1
    cost, calls = found
    if args.json:
        sys.stdout.write(orjson.dumps(trace_document(cost), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(render_trace(cost, calls))
    return 0


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    start = args.start or now - timedelta(days=7)
    end = args.end or now + timedelta(seconds=1)
    return start, end


def _top(args: argparse.Namespace) -> int:
    from finops.traces.queries import top_traces

    start, end = _period(args)
    if end <= start:
        print("finops traces: --to must be after --from", file=sys.stderr)
        return 2
    with _session(args) as session:
        rows = top_traces(session, start, end, feature=args.feature, team=args.team, limit=args.limit)
        lines = [
            (
                r.trace_id,
                r.team,
                r.feature,
                f"{r.first_call_at:%Y-%m-%d %H:%M:%S}",
                str(r.calls),
                str(r.retries),
                f"{r.total_tokens:,}",
                nusd_to_usd_string(r.total_cost_nusd),
                "n/a" if r.amplification_tokens is None else f"{r.amplification_tokens:.2f}x",
            )
            for r in rows
        ]
    header = (
        "TRACE",
        "TEAM",
        "FEATURE",
        "FIRST CALL (UTC)",
        "CALLS",
        "RETRIES",
        "TOKENS",
        "COST USD",
        "AMPL",
    )
    if not lines:
        print(
            "no closed traces in that period (traces close after traces.quiet_s without a new call; "
            "`finops jobs run traces` closes the due ones now)"
        )
        return 0
    print(render_table(header, lines, right=(4, 5, 6, 7, 8)))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from finops.traces.queries import amplification_by

    start, end = _period(args)
    if end <= start:
        print("finops traces: --to must be after --from", file=sys.stderr)
        return 2
    with _session(args) as session:
        groups = amplification_by(session, start, end, args.by)
    print(f"{args.by.upper():<24} {'TRACES':>8} {'P50':>8} {'P90':>8} {'MAX':>8} {'USD PER QUERY':>16}")
    for group, traces, stats, per_query in groups:
        p50, p90, top = (
            ("n/a",) * 3 if stats is None else (_factor(stats.p50), _factor(stats.p90), _factor(stats.max))
        )
        print(f"{group:<24} {traces:>8} {p50:>8} {p90:>8} {top:>8} {_usd(per_query):>16}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument
    from finops.worker.cli import parse_time

    traces = subparsers.add_parser("traces", help="amplification: one trace's waterfall, top traces, stats")
    actions = traces.add_subparsers(dest="traces_command", required=True, metavar="ACTION")

    show = actions.add_parser("show", help="one trace's calls in time order, its factor and breakdown")
    add_config_argument(show)
    show.add_argument("trace_id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_show)

    def period(parser: argparse.ArgumentParser) -> None:
        add_config_argument(parser)
        parser.add_argument("--from", dest="start", type=parse_time, default=None, help="default: 7 days ago")
        parser.add_argument("--to", dest="end", type=parse_time, default=None, help="default: now")

    top = actions.add_parser("top", help="the costliest closed traces")
    period(top)
    top.add_argument("--feature", default=None)
    top.add_argument("--team", default=None)
    top.add_argument("--limit", type=_positive_int, default=10)
    top.set_defaults(handler=_top)

    stats = actions.add_parser("stats", help="amplification p50/p90/max and cost per user query by group")
    period(stats)
    stats.add_argument("--by", choices=["feature", "team"], default="feature")
    stats.set_defaults(handler=_stats)
