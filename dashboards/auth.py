"""Login for the dashboards: a signed Flask session cookie, checked before every request.

Nothing of the app answers without a login: not a page, not Dash's layout or dependencies, not a
callback (``/_dash-update-component``), not a static asset. Pages redirect to ``/login``; Dash's own
endpoints answer 401 so that the browser's app notices instead of parsing a login page.

Users are those under ``dashboard.users`` in the config plus those stored in the database
(``finops dashboard-user add``); a config user hides a stored one of the same name. Each request looks
the user up again, so a removed user or a changed password ends existing sessions (the session stores a
fingerprint of the password hash) and a changed role applies. Config users are as loaded at start;
stored ones take a change within ``db_cache_s`` (5 seconds by default), since they are read at most that
often so that the many callbacks of one page do not each pay a query. A login always reads afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal
from urllib.parse import quote, urlsplit

import flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from dashboards.passwords import DUMMY_HASH, verify_password
from finops.config import DashboardConfig, DashboardUserConfig
from finops.dashboard_users import stored_users
from finops.db import unit_of_work

log = logging.getLogger(__name__)

Role = Literal["admin", "finance", "team"]
OPEN_PATHS = frozenset({"/login", "/logout", "/healthz"})
DB_CACHE_S = 5.0


@dataclass(frozen=True)
class Viewer:
    """Who is looking: every query of a team member is limited to ``team``."""

    name: str
    role: Role
    team: str | None

    def scope_team(self, requested: str | None) -> str | None:
        """The team filter a query must use: a team member's own team, whatever was asked for."""
        return self.team if self.role == "team" else requested


def _fingerprint(user: DashboardUserConfig, secret: str) -> str:
    return hmac.new(secret.encode(), user.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def session_secret(config_secret: str) -> str:
    """The cookie-signing key, derived so that it is never the same as the API-key hashing secret."""
    return hmac.new(config_secret.encode(), b"finops dashboard session", hashlib.sha256).hexdigest()


class StoredUsers:
    """The dashboard users in the database, read at most once per ``ttl_s``.

    Waitress serves requests from several threads. One of them refreshes a stale copy while the others
    go on with the copy they have (the database read is never made under the lock: an unreachable
    server would hold every request, config users' too, for the connect timeout). When the database
    cannot be read (down, or not migrated yet) there are no stored users until it can: they cannot sign
    in, and their sessions stop, while config users are unaffected.
    """

    def __init__(self, engine: Engine, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._users: dict[str, DashboardUserConfig] = {}
        self._read_at: float | None = None
        self._refreshing = False

    def get(self, *, fresh: bool = False) -> dict[str, DashboardUserConfig]:
        if fresh:
            return self._store(self._read(), time.monotonic())
        with self._lock:
            started = time.monotonic()
            current = self._read_at is not None and started - self._read_at < self.ttl_s
            # Before the first read there is no copy to go on with: each caller reads for itself.
            if current or (self._refreshing and self._read_at is not None):
                return self._users
            self._refreshing = True
        try:
            users = self._read()
        finally:
            with self._lock:
                self._refreshing = False
        return self._store(users, started)

    def _store(self, users: dict[str, DashboardUserConfig], read_at: float) -> dict[str, DashboardUserConfig]:
        with self._lock:
            if self._read_at is None or read_at >= self._read_at:
                self._users, self._read_at = users, read_at
            return self._users

    def _read(self) -> dict[str, DashboardUserConfig]:
        try:
            with unit_of_work(self.engine) as session:
                return {user.name: user for user in stored_users(session)}
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()
            log.warning("dashboard users in the database cannot be read: %s", reason[0] if reason else exc)
            return {}


class Auth:
    def __init__(
        self,
        config: DashboardConfig,
        secret: str,
        engine: Engine | None = None,
        *,
        db_cache_s: float = DB_CACHE_S,
    ) -> None:
        """``engine``: where stored users are read; without it only the config's users sign in."""
        self.config = config
        self.secret = secret
        self.config_users = {user.name: user for user in config.users}
        self.stored = StoredUsers(engine, db_cache_s) if engine is not None else None

    def users(self, *, fresh: bool = False) -> dict[str, DashboardUserConfig]:
        """Everyone who may sign in, by name; config wins over the database."""
        if self.stored is None:
            return self.config_users
        return self.stored.get(fresh=fresh) | self.config_users

    def check(self, name: str, password: str) -> DashboardUserConfig | None:
        # Fresh: a user added a moment ago can sign in at once (a login costs an scrypt hash anyway).
        user = self.users(fresh=True).get(name)
        ok = verify_password(password, user.password_hash if user else DUMMY_HASH)
        return user if ok and user else None

    def current(self) -> Viewer | None:
        """The logged-in viewer of this request, or None (the cookie is signed: only we made it)."""
        name = flask.session.get("user")
        user = self.users().get(name) if isinstance(name, str) else None
        if user is None:
            return None
        if flask.session.get("fp") != _fingerprint(user, self.secret):
            return None
        started = flask.session.get("at")
        if not isinstance(started, (int, float)) or time.time() - started > self.config.session_hours * 3600:
            return None
        return Viewer(user.name, user.role, user.team)

    def install(self, server: flask.Flask) -> None:
        server.secret_key = session_secret(self.secret)
        server.config.update(
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_NAME="finops_session",
            PERMANENT_SESSION_LIFETIME=timedelta(hours=self.config.session_hours),
        )
        server.before_request(self._guard)
        server.add_url_rule("/login", "login", self._login, methods=["GET", "POST"])
        server.add_url_rule("/logout", "logout", self._logout, methods=["GET", "POST"])
        server.add_url_rule("/healthz", "healthz", lambda: "ok")

    def _guard(self) -> Response | None:
        if flask.request.path in OPEN_PATHS:
            return None
        viewer = self.current()
        if viewer is not None:
            flask.g.viewer = viewer
            return None
        if flask.request.path.startswith(("/_dash", "/_reload", "/assets", "/_favicon")):
            return flask.Response("login required", status=401, mimetype="text/plain")
        target = flask.request.full_path.rstrip("?")
        return flask.redirect("/login" if target == "/" else "/login?next=" + quote(target, safe="/"))

    def _login(self) -> Response | str:
        error = ""
        next_url = _safe_next(flask.request.values.get("next", "/"))
        if flask.request.method == "POST":
            name = flask.request.form.get("username", "")
            user = self.check(name, flask.request.form.get("password", ""))
            if user is not None:
                flask.session.clear()
                flask.session.permanent = True
                flask.session.update(user=user.name, fp=_fingerprint(user, self.secret), at=time.time())
                return flask.redirect(next_url)
            error = "Wrong user name or password."
        if not self.users():
            error = (
                "No dashboard users are configured: add one with `finops dashboard-user add`, or under "
                "dashboard.users in finops.yaml (hash the password with `finops dashboard-user hash`)."
            )
        return login_page(error, next_url)

    def _logout(self) -> Response:
        flask.session.clear()
        return flask.redirect("/login")


def _safe_next(target: str) -> str:
    """Only a path on this site: a login must not bounce the user to another host."""
    parts = urlsplit(target)
    # Browsers read a backslash as a slash ("/\\evil.com" is "//evil.com"), and control characters
    # are dropped before parsing, so neither may appear at all.
    if any(ch == "\\" or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return "/"
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def viewer() -> Viewer:
    """The viewer of the current request; the guard has already refused requests without one."""
    found = flask.g.get("viewer")
    if not isinstance(found, Viewer):
        raise PermissionError("no logged-in viewer for this request")
    return found


def login_page(error: str, next_url: str) -> str:
    message = f'<p class="login-error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>finops · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ margin: 0; font-family: Inter, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; background: #f4f6fb;
  color: #1f2937; display: flex; min-height: 100vh; align-items: center; justify-content: center; }}
.card {{ background: #fff; border-radius: 12px; box-shadow: 0 8px 30px rgba(15, 23, 42, .08);
  padding: 36px 40px; width: 340px; }}
.brand {{ font-weight: 700; font-size: 22px; letter-spacing: -.02em; margin-bottom: 4px; }}
.brand span {{ color: #4c6ef5; }}
.sub {{ color: #6b7280; font-size: 14px; margin-bottom: 24px; }}
label {{ display: block; font-size: 13px; font-weight: 600; margin: 14px 0 6px; }}
input {{ width: 100%; box-sizing: border-box; padding: 10px 12px; border: 1px solid #d1d5db;
  border-radius: 8px; font-size: 15px; }}
button {{ margin-top: 22px; width: 100%; padding: 11px; border: 0; border-radius: 8px; background: #4c6ef5;
  color: #fff; font-size: 15px; font-weight: 600; cursor: pointer; }}
.login-error {{ color: #c92a2a; background: #fff5f5; border-radius: 8px; padding: 10px 12px;
  font-size: 14px; }}
</style></head>
<body><form class="card" method="post" action="/login">
<div class="brand">fin<span>ops</span></div><div class="sub">LLM cost dashboards · sign in</div>
{message}
<input type="hidden" name="next" value="{html.escape(next_url)}">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button id="login" type="submit">Sign in</button>
</form></body></html>"""
