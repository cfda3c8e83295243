"""``finops latency``, ``finops events``, ``finops capacity``: the observability reads in a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from finops.tables import render_table


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[Session]:
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    with engine_scope(config_from_args(args).database_url) as engine, unit_of_work(engine) as session:
        yield session


def _period(args: argparse.Namespace, default: timedelta) -> tuple[datetime, datetime] | None:
    now = datetime.now(UTC)
    start = args.start or now - default
    end = args.end or now + timedelta(seconds=1)
    if end <= start:
        print(f"finops {args.command}: --to must be after --from", file=sys.stderr)
        return None
    return start, end


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def _latency(args: argparse.Namespace) -> int:
    from finops.observability.queries import latency_percentiles

    period = _period(args, timedelta(days=1))
    if period is None:
        return 2
    with _session(args) as session:
        points = latency_percentiles(
            session,
            *period,
            by=args.by,
            bucket=args.bucket,
            team=args.team,
            feature=args.feature,
            model=args.model,
        )
    points = [p for p in points if args.metric == "all" or p.metric == args.metric]
    if not points:
        print("no latency in that period (`finops jobs run latency_rollups` rolls up the newest calls)")
        return 0
    fmt = "%Y-%m-%d %H:00" if args.bucket == "hour" else "%Y-%m-%d"
    rows = [
        (
            f"{p.bucket_start:{fmt}}",
            p.group,
            p.metric,
            _ms(p.p50_ms),
            _ms(p.p90_ms),
            _ms(p.p99_ms),
            f"{p.count:,}",
        )
        for p in points
    ]
    header = (
        args.bucket.upper() + " (UTC)",
        args.by.upper(),
        "METRIC",
        "P50 MS",
        "P90 MS",
        "P99 MS",
        "CALLS",
    )
    print(render_table(header, rows, right=(3, 4, 5, 6)))
    print("(percentiles within 1% of the exact ones: mergeable hourly sketches)")
    return 0


def _events(args: argparse.Namespace) -> int:
    from finops.observability.queries import event_counts

    period = _period(args, timedelta(days=1))
    if period is None:
        return 2
    with _session(args) as session:
        counts = event_counts(session, *period, by=args.by, team=args.team)
    if not counts:
        print("no events in that period")
        return 0
    rows = [(c.group, c.event, f"{c.calls:,}") for c in counts]
    print(render_table((args.by.upper(), "EVENT", "CALLS"), rows, right=(2,)))
    return 0


def _opt(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _capacity(args: argparse.Namespace) -> int:
    from finops.observability.queries import backend_capacity, capacity_verdicts

    now = datetime.now(UTC)
    with _session(args) as session:
        points = backend_capacity(session, now - timedelta(minutes=args.minutes), now + timedelta(seconds=1))
        verdicts = capacity_verdicts(session, now)
    if not verdicts:
        print("no scrapes yet (`finops jobs run backend_scrape` reads each backend's vLLM /metrics)")
        return 0
    latest = {p.backend: p for p in points}
    rows = []
    for backend, verdict in verdicts.items():
        p = latest.get(backend)
        rows.append(
            (
                backend,
                _opt(p.running if p else None, ".0f"),
                _opt(p.waiting if p else None, ".0f"),
                _opt(p.kv_cache_usage if p else None, ".0%"),
                _opt(p.prompt_tokens_per_s if p else None, ",.0f"),
                _opt(p.generation_tokens_per_s if p else None, ",.0f"),
                _opt(p.tokens_per_gpu_second if p else None, ",.0f"),
                _opt(p.prefix_cache_hit_rate if p else None, ".0%"),
                verdict,
            )
        )
    header = (
        "BACKEND",
        "RUNNING",
        "WAITING",
        "KV",
        "PROMPT TOK/S",
        "GEN TOK/S",
        "TOK/GPU-S",
        "PREFIX HIT",
        "VERDICT",
    )
    print(render_table(header, rows, right=(1, 2, 3, 4, 5, 6, 7)))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument
    from finops.worker.cli import parse_time

    def period(parser: argparse.ArgumentParser) -> None:
        add_config_argument(parser)
        parser.add_argument("--from", dest="start", type=parse_time, default=None, help="default: 1 day ago")
        parser.add_argument("--to", dest="end", type=parse_time, default=None, help="default: now")

    latency = subparsers.add_parser(
        "latency", help="p50/p90/p99 of time to first token, inter-token and total"
    )
    period(latency)
    latency.add_argument("--by", choices=("model", "feature", "backend"), default="model")
    latency.add_argument("--bucket", choices=("hour", "day"), default="hour")
    latency.add_argument("--metric", choices=("ttft", "itl", "total", "all"), default="all")
    latency.add_argument("--team")
    latency.add_argument("--feature")
    latency.add_argument("--model")
    latency.set_defaults(handler=_latency)

    events = subparsers.add_parser(
        "events", help="context overflows, truncations, disconnects and upstream errors per feature or model"
    )
    period(events)
    events.add_argument("--by", choices=("feature", "model"), default="feature")
    events.add_argument("--team")
    events.set_defaults(handler=_events)

    capacity = subparsers.add_parser(
        "capacity", help="each backend's queue, KV cache, token rates and verdict"
    )
    add_config_argument(capacity)
    capacity.add_argument("--minutes", type=int, default=10, help="how far back to read (default: 10)")
    capacity.set_defaults(handler=_capacity)
