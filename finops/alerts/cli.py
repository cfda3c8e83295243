"""``finops alerts list|redeliver``."""

from __future__ import annotations

import argparse
import sys


def _alerts_list(args: argparse.Namespace) -> int:
    from finops.alerts.queries import list_alerts
    from finops.budgets.message import usd
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
        alerts = list_alerts(session, team=args.team, limit=args.limit)
    if not alerts:
        print("no alerts")
        return 0
    for alert in alerts:
        figures = ""
        if alert.spend_nusd is not None and alert.amount_nusd is not None:
            figures = f"  spend {usd(alert.spend_nusd)} of {usd(alert.amount_nusd)}"
        print(
            f"{alert.created_at:%Y-%m-%d %H:%M:%S} #{alert.id} {alert.source}/{alert.kind}: "
            f"{alert.subject}{figures}"
        )
        for d in alert.deliveries:
            when = f" at {d.delivered_at:%H:%M:%S}" if d.delivered_at else ""
            error = f"  last error: {d.last_error}" if d.last_error else ""
            print(f"    delivery {d.id} -> {d.channel}: {d.status}{when}, {d.attempts} attempt(s){error}")
    return 0


def _alerts_redeliver(args: argparse.Namespace) -> int:
    from finops.alerts import outbox
    from finops.cli import config_from_args
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine:
        try:
            with unit_of_work(engine) as session:
                outbox.redeliver(session, args.delivery_id)
        except (LookupError, ValueError) as exc:
            print(f"finops alerts redeliver: {exc}", file=sys.stderr)
            return 2
        # Sent now, in the foreground; if it fails again it stays pending and a worker retries it.
        outcome = outbox.deliver(engine, config, args.delivery_id)
    if outcome.status == "delivered":
        print(f"delivery {args.delivery_id}: delivered")
        return 0
    print(f"delivery {args.delivery_id}: {outcome.status}; {outcome.error or 'a worker holds it'}")
    return 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    alerts = subparsers.add_parser("alerts", help="list alerts and their deliveries, or send one again")
    actions = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="alerts, newest first, with each channel's delivery status")
    add_config_argument(listing)
    listing.add_argument("--team", default=None)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_alerts_list)
    again = actions.add_parser("redeliver", help="send a failed delivery again (by its delivery id)")
    add_config_argument(again)
    again.add_argument("delivery_id", type=int)
    again.set_defaults(handler=_alerts_redeliver)
