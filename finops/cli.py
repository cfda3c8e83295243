"""The ``finops`` command: one entry point, a subcommand per process or operator task.

Each domain registers its own subcommands (``register(subparsers)``) so that this module stays a table
of contents rather than a second home for their logic.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from finops.config import ConfigError, FinopsConfig, load_config

Handler = Callable[[argparse.Namespace], int]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        default=None,
        help="path to finops.yaml (default: $FINOPS_CONFIG, else built-in defaults)",
    )


def config_from_args(args: argparse.Namespace) -> FinopsConfig:
    return load_config(getattr(args, "config", None))


def _cmd_migrate(args: argparse.Namespace) -> int:
    from finops.migrate import upgrade

    config = config_from_args(args)
    upgrade(config.database_url, args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def _register_migrate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    add_config_argument(parser)
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.set_defaults(handler=_cmd_migrate)


def _cmd_proxy(args: argparse.Namespace) -> int:
    from finops.proxy.server import run_proxy

    config = config_from_args(args)
    return run_proxy(config, args.host, args.port)


def _register_proxy(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("proxy", help="run the OpenAI-compatible proxy in front of the backends")
    add_config_argument(parser)
    parser.add_argument("--host", default=None, help="address to listen on (default: proxy.host, 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: proxy.port, 8080)"
    )
    parser.set_defaults(handler=_cmd_proxy)


def _cmd_up(args: argparse.Namespace) -> int:
    from finops.up import run_up

    return run_up(args.config, args.demo, args.port, args.sim_port, args.dashboard_port)


def _register_up(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("up", help="run every finops process in one command (embedded default)")
    add_config_argument(parser)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also start a simulated vLLM fleet, with a config written to ./finops-demo/",
    )
    parser.add_argument("--port", type=int, default=8080, help="proxy port (default: 8080)")
    parser.add_argument(
        "--sim-port",
        type=int,
        default=9101,
        help="--demo: the first of the four stand-in backends' ports (default: 9101)",
    )
    parser.add_argument(
        "--dashboard-port", type=int, default=None, help="dashboard port (default: dashboard.port, 8050)"
    )
    parser.set_defaults(handler=_cmd_up)


def build_parser() -> argparse.ArgumentParser:
    from dashboards.cli import register as register_dashboard
    from finops.alerts.cli import register as register_alerts
    from finops.api.cli import register as register_api
    from finops.budgets.cli import register as register_budgets
    from finops.exports.cli import register as register_exports
    from finops.keys.cli import register as register_keys
    from finops.loadgen.cli import register as register_loadgen
    from finops.observability.cli import register as register_observability
    from finops.report import register as register_report
    from finops.sim.cli import register as register_sim
    from finops.traces.cli import register as register_traces
    from finops.worker.cli import register as register_worker

    parser = argparse.ArgumentParser(prog="finops", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _register_migrate(subparsers)
    _register_proxy(subparsers)
    _register_up(subparsers)
    register_keys(subparsers)
    register_sim(subparsers)
    register_worker(subparsers)
    register_report(subparsers)
    register_exports(subparsers)
    register_loadgen(subparsers)
    register_traces(subparsers)
    register_observability(subparsers)
    register_dashboard(subparsers)
    register_budgets(subparsers)
    register_alerts(subparsers)
    register_api(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from finops.logs import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging()
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"finops: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        print(
            f"finops: database error: {first[0] if first else type(exc).__name__}\n"
            "  is the database reachable, and migrated to the current schema (`finops migrate`)?",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
