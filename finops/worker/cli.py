"""``finops worker``, ``finops beat``, ``finops jobs list|run``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from finops.jobs.registry import JOBS, JobBusy, UnknownJob, run_job


def parse_time(text: str) -> datetime:
    """ISO 8601 date or time; a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _worker(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.worker.celery_app import make_celery

    config = config_from_args(args)
    app = make_celery(config)
    argv = [
        "worker",
        "--loglevel",
        args.loglevel,
        "--concurrency",
        str(args.concurrency or config.worker.concurrency),
    ]
    if args.beat:
        argv += ["--beat", "--schedule", config.worker.beat_schedule_file]
    if args.pool:
        argv += ["--pool", args.pool]
    app.worker_main(argv)
    return 0


def _beat(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.worker.celery_app import make_celery

    config = config_from_args(args)
    make_celery(config).start(
        ["beat", "--loglevel", args.loglevel, "--schedule", config.worker.beat_schedule_file]
    )
    return 0


def _jobs_list(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    for job in JOBS.values():
        print(f"{job.name:<16} every {job.every_s(config):>6g} s  {job.description}")
    return 0


def _jobs_run(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.db import engine_scope

    config = config_from_args(args)
    if (args.start is None) != (args.end is None):
        print("finops jobs run: give both --from and --to, or neither", file=sys.stderr)
        return 2
    if args.start is not None and args.end <= args.start:
        print("finops jobs run: --to must be after --from", file=sys.stderr)
        return 2
    try:
        with engine_scope(config.database_url) as engine:
            result = run_job(engine, config, args.name, start=args.start, end=args.end)
    except UnknownJob as exc:
        print(f"finops jobs run: {exc.args[0]}", file=sys.stderr)
        return 2
    except JobBusy as exc:
        print(f"finops jobs run: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name}: {result}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    worker = subparsers.add_parser("worker", help="run a Celery worker for the scheduled jobs")
    add_config_argument(worker)
    worker.add_argument("--beat", action="store_true", help="also run the scheduler in this process")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument("--pool", default=None, help="Celery pool (prefork, threads, solo)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(handler=_worker)

    beat = subparsers.add_parser("beat", help="run the Celery beat scheduler (one per deployment)")
    add_config_argument(beat)
    beat.add_argument("--loglevel", default="INFO")
    beat.set_defaults(handler=_beat)

    jobs = subparsers.add_parser("jobs", help="list the scheduled jobs, or run one now in the foreground")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the jobs and their schedule")
    add_config_argument(listing)
    listing.set_defaults(handler=_jobs_list)
    run = actions.add_parser("run", help="run one job once, now")
    add_config_argument(run)
    run.add_argument("name", help=", ".join(sorted(JOBS)))
    run.add_argument(
        "--from", dest="start", type=parse_time, default=None, help="recompute from (ISO 8601, UTC)"
    )
    run.add_argument("--to", dest="end", type=parse_time, default=None, help="recompute to (ISO 8601, UTC)")
    run.set_defaults(handler=_jobs_run)
