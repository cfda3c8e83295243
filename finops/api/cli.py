"""``finops api`` (serve the management API) and ``finops tokens create|list|revoke`` (its tokens)."""

from __future__ import annotations

import argparse
import sys

from finops.api.tokens import ROLES, TokenError, create_token, list_tokens, revoke_token
from finops.db import engine_scope, unit_of_work
from finops.tables import render_table


def _serve(args: argparse.Namespace) -> int:
    from finops.api.server import run_api
    from finops.cli import config_from_args

    return run_api(config_from_args(args), args.host, args.port)


def _create(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            created = create_token(session, config, args.role, args.team, args.name)
    except TokenError as exc:
        print(f"finops tokens: {exc}", file=sys.stderr)
        return 2
    print(
        f"created management token {created.token_id}, role {created.role}"
        + (f", team {created.team}" if created.team else "")
    )
    print("the token is shown once; store it now:")
    print(created.token)
    return 0


def _list(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
        lines = [
            (
                r.id,
                r.token_prefix + "...",
                r.role,
                r.team or "-",
                r.name or "-",
                r.created_at.strftime("%Y-%m-%d %H:%M"),
                r.revoked_at.strftime("%Y-%m-%d %H:%M") if r.revoked_at else "-",
            )
            for r in list_tokens(session, include_revoked=args.all)
        ]
    print(render_table(("ID", "TOKEN", "ROLE", "TEAM", "NAME", "CREATED (UTC)", "REVOKED"), lines))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args

    config = config_from_args(args)
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            row = revoke_token(session, args.token_id)
            print(f"revoked management token {row.id} (role {row.role}); it stops working at once")
    except TokenError as exc:
        print(f"finops tokens: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    api = subparsers.add_parser("api", help="run the management API (its own process, beside the proxy)")
    add_config_argument(api)
    api.add_argument("--host", default=None, help="address to listen on (default: api.host, 127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="port to listen on (default: api.port, 8090)")
    api.set_defaults(handler=_serve)

    tokens = subparsers.add_parser("tokens", help="create, list and revoke management API tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a token with a role and print it once")
    add_config_argument(create)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--team", default=None, help="the team a role-team token reads (required for it)")
    create.add_argument("--name", default=None, help="a label for operators")
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="list tokens (never the tokens themselves)")
    add_config_argument(listing)
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    add_config_argument(revoke)
    revoke.add_argument("token_id")
    revoke.set_defaults(handler=_revoke)
