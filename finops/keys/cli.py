"""``finops keys create|list|revoke``: API keys for the proxy, each tied to a team."""

from __future__ import annotations

import argparse
import sys

from finops.db import engine_scope, unit_of_work
from finops.keys.service import KeyError_, create_key, list_keys, revoke_key
from finops.proxy.errors import ProxyError
from finops.tables import render_table


def _create(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            created = create_key(session, config, args.team, args.feature, args.name)
    except ProxyError as exc:
        print(f"finops keys: {exc.message}", file=sys.stderr)
        return 2
    print(
        f"created key {created.key_id} for team {created.team}"
        + (f", default feature {created.feature}" if created.feature else "")
    )
    print("the key is shown once; store it now:")
    print(created.key)
    return 0


def _list(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
        lines = [
            (
                r.id,
                r.key_prefix + "...",
                r.team,
                r.default_feature or "-",
                r.name or "-",
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.revoked_at.strftime("%Y-%m-%d %H:%M") if r.revoked_at else "-",
            )
            for r in list_keys(session, include_revoked=args.all)
        ]
    print(render_table(("ID", "KEY", "TEAM", "FEATURE", "NAME", "CREATED (UTC)", "REVOKED"), lines))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            row = revoke_key(session, args.key_id)
            print(
                f"revoked key {row.id} of team {row.team}; proxies stop accepting it within "
                f"{config.proxy.refresh_interval_s:g} s"
            )
    except KeyError_ as exc:
        print(f"finops keys: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    keys = subparsers.add_parser("keys", help="create, list and revoke proxy API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a key for a team and print it once")
    add_config_argument(create)
    create.add_argument("--team", required=True)
    create.add_argument("--feature", default=None, help="feature tag for calls that name none")
    create.add_argument("--name", default=None, help="a label for operators")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    add_config_argument(listing)
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    add_config_argument(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke)
