"""``finops budgets list|create|update|delete``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from finops.budgets.service import BudgetError


def _usd(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _budgets_list(args: argparse.Namespace) -> int:
    from finops.budgets.message import usd
    from finops.budgets.queries import budget_statuses
    from finops.budgets.service import list_budgets, sync_config_budgets
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    now = datetime.now(UTC)
    with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
        sync_config_budgets(session, config, now)
        sources = {row.name: row for row in list_budgets(session)}
        statuses = budget_statuses(session, config, now, team=args.team)
    if not statuses:
        print("no budgets (add them to finops.yaml under 'budgets', or `finops budgets create`)")
        return 0
    print(
        f"{'name':<24} {'scope':<32} {'basis':<6} {'amount':>14} {'spend':>14} {'%':>8} "
        f"{'forecast':>14}  source"
    )
    for s in statuses:
        row = sources[s.name]
        scope = ", ".join(f"{k}={v}" for k, v in s.scope.items()) or "global"
        print(
            f"{s.name:<24} {scope:<32} {s.basis:<6} {usd(s.amount_nusd):>14} {usd(s.spend_nusd):>14} "
            f"{s.percent:>7}% {usd(s.forecast_nusd):>14}  {row.source}"
            f"{'  hard-limit' if s.hard_limit else ''}"
            f"  thresholds {','.join(f'{t:g}' for t in s.thresholds)} -> channels {row.channels or '-'}"
        )
    return 0


def _spec_from_args(args: argparse.Namespace, *, partial: bool) -> dict[str, Any]:
    from finops.budgets.service import parse_thresholds

    spec: dict[str, Any] = {}
    if not partial:
        spec["name"] = args.name
    elif args.new_name is not None:
        spec["name"] = args.new_name
    if args.global_scope or any(v is not None for v in (args.team, args.feature, args.model)):
        spec["scope"] = {
            k: v for k, v in (("team", args.team), ("feature", args.feature), ("model", args.model)) if v
        }
    if args.monthly_usd is not None:
        spec["monthly_usd"] = args.monthly_usd
    if args.basis is not None:
        spec["basis"] = args.basis
    if args.thresholds is not None:
        spec["thresholds"] = parse_thresholds(args.thresholds)
    if args.forecast is not None:
        spec["forecast"] = args.forecast
    if args.channels is not None:
        spec["channels"] = [c for c in args.channels.split(",") if c]
    if args.hard_limit is not None:
        spec["hard_limit"] = args.hard_limit
    return spec


def _write(args: argparse.Namespace) -> int:
    from finops.budgets.service import create_budget, delete_budget, sync_config_budgets, update_budget
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    command = args.budgets_command
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            sync_config_budgets(session, config)
            if command == "create":
                if args.monthly_usd is None:
                    raise BudgetError("monthly_usd: required (--monthly-usd)")
                create_budget(session, config, _spec_from_args(args, partial=False))
            elif command == "update":
                changes = _spec_from_args(args, partial=True)
                if not changes:
                    raise BudgetError("nothing to change: give at least one option")
                update_budget(session, config, args.name, changes)
            else:
                delete_budget(session, args.name)
    except BudgetError as exc:
        print(f"finops budgets {command}: {exc}", file=sys.stderr)
        return 2
    print(f"budget {args.name}: {command}d")
    return 0


def _budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--team", default=None)
    parser.add_argument("--feature", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--global", dest="global_scope", action="store_true", help="scope: all spend")
    parser.add_argument("--monthly-usd", type=_usd, default=None, help="the amount per calendar month")
    parser.add_argument("--basis", choices=("tokens", "gpu"), default=None)
    parser.add_argument("--thresholds", default=None, help="fractions, comma-separated (default 0.5,0.8,1)")
    parser.add_argument("--forecast", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--channels", default=None, help="channel names from config, comma-separated")
    parser.add_argument("--hard-limit", action=argparse.BooleanOptionalAction, default=None)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    budgets = subparsers.add_parser("budgets", help="list, create, change or delete budgets")
    actions = budgets.add_subparsers(dest="budgets_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every budget with this month's spend, percent and forecast")
    add_config_argument(listing)
    listing.add_argument("--team", default=None, help="only budgets scoped to this team")
    listing.set_defaults(handler=_budgets_list)
    create = actions.add_parser("create", help="a new budget (config budgets live in finops.yaml)")
    add_config_argument(create)
    create.add_argument("name")
    _budget_options(create)
    create.set_defaults(handler=_write, new_name=None)
    update = actions.add_parser("update", help="change a budget made by the CLI or API")
    add_config_argument(update)
    update.add_argument("name")
    update.add_argument("--rename", dest="new_name", default=None)
    _budget_options(update)
    update.set_defaults(handler=_write)
    remove = actions.add_parser("delete", help="delete a budget made by the CLI or API (its alerts stay)")
    add_config_argument(remove)
    remove.add_argument("name")
    remove.set_defaults(handler=_write)
