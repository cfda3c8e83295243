"""``finops dashboard`` (serve the app) and ``finops dashboard-user`` (its users): ``hash`` makes a
password hash for dashboard.users in finops.yaml; ``add``, ``list``, ``remove`` and ``passwd`` manage the
users kept in the database, which sign in beside the config's (config wins on a shared name)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import sys

from sqlalchemy.exc import SQLAlchemyError

from finops.config import FinopsConfig

PROG = "finops dashboard-user"


def _user_warnings(config: FinopsConfig) -> list[str]:
    """What to tell the operator about the users at start: nobody can sign in, or stored users that a
    config user hides (they come back if the config entry goes). A database that is away or not
    migrated yet counts as holding no users."""
    from finops.dashboard_users import hidden_stored_names, list_users
    from finops.db import engine_scope, unit_of_work

    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            stored = bool(list_users(session))
            hidden = hidden_stored_names(session, config.dashboard)
    except SQLAlchemyError:
        stored, hidden = False, []
    warnings = []
    if not config.dashboard.users and not stored:
        warnings.append(
            "no dashboard users: nobody can sign in. Add one with "
            "`finops dashboard-user add`, or under dashboard.users (`finops dashboard-user hash`)."
        )
    for name in hidden:
        warnings.append(
            f"dashboard user {name!r} is both in finops.yaml and in the database; the config entry wins, "
            f"and the stored one (its own password and role) would sign in again if the config entry were "
            f"removed: `finops dashboard-user remove {name}` unless that is meant."
        )
    return warnings


def _serve(args: argparse.Namespace) -> int:
    from waitress import serve

    from dashboards.app import create_app
    from finops.cli import config_from_args

    config = config_from_args(args)
    host = args.host or config.dashboard.host
    port = args.port if args.port is not None else config.dashboard.port
    for warning in _user_warnings(config):
        print(f"finops dashboard: {warning}", file=sys.stderr)
    app = create_app(config)

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"finops dashboard: serving on http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve(app.server, host=host, port=port, threads=args.threads, ident="finops", _quiet=True)
    return 0


def _refused(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 2


def _read_password(args: argparse.Namespace) -> str | None:
    """One line of standard input, or typed twice at the terminal; None when the two differ."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    return password if getpass.getpass("again: ") == password else None


def _hash(args: argparse.Namespace) -> int:
    from dashboards.passwords import PasswordError, hash_password

    password = _read_password(args)
    if password is None:
        return _refused("the passwords differ")
    try:
        print(hash_password(password))
    except PasswordError as exc:
        return _refused(str(exc))
    return 0


def _add(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.dashboard_users import DashboardUserError, add_user, check_new_user
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine:
        try:
            # Checked before the password is asked for: a wrong --team should not cost typing it twice.
            with unit_of_work(engine) as session:
                check_new_user(session, args.name, args.role, args.team, config=config.dashboard)
            password = _read_password(args)
            if password is None:
                return _refused("the passwords differ")
            with unit_of_work(engine) as session:
                row = add_user(session, args.name, args.role, args.team, password, config=config.dashboard)
        except DashboardUserError as exc:
            return _refused(str(exc))
    print(f"added dashboard user {row.name}, role {row.role}" + (f", team {row.team}" if row.team else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.dashboard_users import all_users
    from finops.db import engine_scope, unit_of_work
    from finops.tables import render_table

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
        lines = [
            (u.name, u.role, u.team or "-", u.source + (" (hidden by config)" if u.hidden_by_config else ""))
            for u in all_users(session, config.dashboard)
        ]
    print(render_table(("NAME", "ROLE", "TEAM", "SOURCE"), lines))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.dashboard_users import DashboardUserError, remove_user
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    try:
        with engine_scope(config.database_url) as engine, unit_of_work(engine) as session:
            remove_user(session, args.name, config=config.dashboard)
    except DashboardUserError as exc:
        return _refused(str(exc))
    print(f"removed dashboard user {args.name}; the dashboards end its sessions within seconds")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    from finops.cli import config_from_args
    from finops.dashboard_users import DashboardUserError, check_password_change, set_password
    from finops.db import engine_scope, unit_of_work

    config = config_from_args(args)
    with engine_scope(config.database_url) as engine:
        try:
            with unit_of_work(engine) as session:
                # The user must exist (and not be a config one) before the password is asked for.
                check_password_change(session, args.name, config=config.dashboard)
            password = _read_password(args)
            if password is None:
                return _refused("the passwords differ")
            with unit_of_work(engine) as session:
                set_password(session, args.name, password, config=config.dashboard)
        except DashboardUserError as exc:
            return _refused(str(exc))
    print(f"changed the password of dashboard user {args.name}; its sessions end within seconds")
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1 thread")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from finops.cli import add_config_argument

    serve = subparsers.add_parser("dashboard", help="serve the cost dashboards (Dash) behind a login")
    add_config_argument(serve)
    serve.add_argument(
        "--host", default=None, help="address to listen on (default: dashboard.host, 127.0.0.1)"
    )
    serve.add_argument("--port", type=_port, default=None, help="port (default: dashboard.port, 8050)")
    serve.add_argument("--threads", type=_threads, default=8, help="worker threads (default: 8)")
    serve.set_defaults(handler=_serve)

    users = subparsers.add_parser(
        "dashboard-user",
        help="dashboard users: add, list, remove, passwd (in the database); hash (for finops.yaml)",
    )
    actions = users.add_subparsers(dest="dashboard_user_command", required=True, metavar="ACTION")
    hashing = actions.add_parser(
        "hash",
        help="print an scrypt hash of a password, for dashboard.users[].password_hash",
        description="Prints the hash to paste under dashboard.users in finops.yaml: "
        "{name: ana, role: finance, password_hash: ...} "
        "(role admin|finance|team; team users also take team:).",
    )
    _add_password_stdin(hashing)
    hashing.set_defaults(handler=_hash)

    add = actions.add_parser(
        "add",
        help="add a dashboard user to the database (asks for the password twice)",
        description="Adds a user who signs in beside those under dashboard.users in finops.yaml. "
        "A name taken by a config user is refused: config wins.",
    )
    add_config_argument(add)
    add.add_argument("name")
    add.add_argument("--role", required=True, metavar="admin|finance|team")
    add.add_argument("--team", default=None, help="the one team a role-team user sees (required for it)")
    _add_password_stdin(add)
    add.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="list dashboard users, from config and database (no hashes)")
    add_config_argument(listing)
    listing.set_defaults(handler=_list)

    remove = actions.add_parser(
        "remove", help="remove a dashboard user from the database; its sessions end within seconds"
    )
    add_config_argument(remove)
    remove.add_argument("name")
    remove.set_defaults(handler=_remove)

    passwd = actions.add_parser(
        "passwd", help="change a database user's password; its sessions end within seconds"
    )
    add_config_argument(passwd)
    passwd.add_argument("name")
    _add_password_stdin(passwd)
    passwd.set_defaults(handler=_passwd)


def _add_password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
