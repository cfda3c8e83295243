"""``finops dashboard`` (serve the app); ``finops dashboard-user hash`` (a password hash for the config)."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import sys


def _serve(args: argparse.Namespace) -> int:
    from waitress import serve

    from dashboards.app import create_app
    from finops.cli import config_from_args

    config = config_from_args(args)
    host = args.host or config.dashboard.host
    port = args.port if args.port is not None else config.dashboard.port
    if not config.dashboard.users:
        print(
            "finops dashboard: no users under dashboard.users: nobody can sign in. "
            "Add one (hash its password with `finops dashboard-user hash`).",
            file=sys.stderr,
        )
    app = create_app(config)

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"finops dashboard: serving on http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve(app.server, host=host, port=port, threads=args.threads, ident="finops", _quiet=True)
    return 0


def _hash(args: argparse.Namespace) -> int:
    from dashboards.passwords import PasswordError, hash_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("finops dashboard-user: the passwords differ", file=sys.stderr)
            return 2
    try:
        print(hash_password(password))
    except PasswordError as exc:
        print(f"finops dashboard-user: {exc}", file=sys.stderr)
        return 2
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
        "dashboard-user", help="dashboard users: make a password hash for finops.yaml"
    )
    actions = users.add_subparsers(dest="dashboard_user_command", required=True, metavar="ACTION")
    hashing = actions.add_parser(
        "hash",
        help="print an scrypt hash of a password, for dashboard.users[].password_hash",
        description="Prints the hash to paste under dashboard.users in finops.yaml: "
        "{name: ana, role: finance, password_hash: ...} "
        "(role admin|finance|team; team users also take team:).",
    )
    hashing.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    hashing.set_defaults(handler=_hash)
