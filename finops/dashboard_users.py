"""Dashboard users kept in the database (``finops dashboard-user add``), beside those in finops.yaml.

The dashboards accept both. Config wins: a name under ``dashboard.users`` cannot be added here, and a
stored user whose name appears in the file later is hidden by it (the file's entry is the one that
signs in). Config users are changed by editing finops.yaml, so the service refuses to change them.
Services take a ``Session`` and never commit; the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import CheckConstraint, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from finops.config import DashboardConfig, DashboardUserConfig
from finops.db import Base, BigIntPK, UTCDateTime

log = logging.getLogger(__name__)

CONFIG = "config"
DATABASE = "database"
# Stands in for the hash while name, role and team are checked, so that a bad role is reported before
# the (deliberately slow) hash is made. It has the shape DashboardUserConfig asks for; it is never stored.
_UNSET_HASH = "scrypt$0$0$0$unset$unset"


class DashboardUserRow(Base):
    __tablename__ = "dashboard_users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'finance', 'team')", name="role"),
        # A team member sees one team; admin and finance see all, so they name none.
        CheckConstraint(
            "(role = 'team' AND team IS NOT NULL) OR (role <> 'team' AND team IS NULL)", name="team"
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(128))
    # scrypt$n$r$p$salt$hash (dashboards.passwords); never the password.
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DashboardUserError(ValueError):
    """A dashboard user that cannot be added or changed, with a message that names the problem."""


@dataclass(frozen=True)
class ListedUser:
    """One line of ``finops dashboard-user list``: who, and where the entry lives (no hash)."""

    name: str
    role: str
    team: str | None
    source: str
    hidden_by_config: bool = False


def _validated(fields: Mapping[str, Any]) -> DashboardUserConfig:
    """The same rules as a dashboard.users entry in finops.yaml, with the problems in one message."""
    try:
        return DashboardUserConfig.model_validate(dict(fields))
    except ValidationError as exc:
        problems = []
        for problem in exc.errors():
            where = ".".join(str(part) for part in problem["loc"])
            message = problem["msg"].removeprefix("Value error, ")
            given = problem.get("input")
            # A field's own input is shown; a whole-user rule (role and team) names the user itself.
            if where and where != "password_hash" and isinstance(given, str):
                message += f" (got {given!r})"
            problems.append(f"{where}: {message}" if where else message)
        raise DashboardUserError("; ".join(problems)) from None


def _hashed(password: str) -> str:
    # Imported here: dashboards.passwords makes a hash when imported, which every importer of
    # finops.models (the proxy, migrations) would otherwise pay for.
    from dashboards.passwords import PasswordError, hash_password

    try:
        return hash_password(password)
    except PasswordError as exc:
        raise DashboardUserError(f"password: {exc}") from None


def _config_names(config: DashboardConfig) -> set[str]:
    return {user.name for user in config.users}


def _refuse_config_user(name: str, config: DashboardConfig, what: str) -> None:
    if name in _config_names(config):
        raise DashboardUserError(f"{name!r} is a config user: {what} under dashboard.users in finops.yaml")


def _find(session: Session, name: str) -> DashboardUserRow | None:
    return session.scalars(select(DashboardUserRow).where(DashboardUserRow.name == name)).one_or_none()


def _existing(session: Session, name: str) -> DashboardUserRow:
    row = _find(session, name)
    if row is None:
        raise DashboardUserError(f"no dashboard user named {name!r} in the database")
    return row


def check_new_user(
    session: Session, name: str, role: str, team: str | None, *, config: DashboardConfig
) -> None:
    """Raises what :func:`add_user` would for these name, role and team, before a password is asked."""
    _validated({"name": name, "role": role, "team": team, "password_hash": _UNSET_HASH})
    if name in _config_names(config):
        raise DashboardUserError(f"{name!r} is a config user (dashboard.users in finops.yaml); config wins")
    if _find(session, name) is not None:
        raise DashboardUserError(f"a dashboard user named {name!r} exists already")


def add_user(
    session: Session,
    name: str,
    role: str,
    team: str | None,
    password: str,
    *,
    config: DashboardConfig,
    now: datetime | None = None,
) -> DashboardUserRow:
    check_new_user(session, name, role, team, config=config)
    user = _validated({"name": name, "role": role, "team": team, "password_hash": _hashed(password)})
    now = now or datetime.now(UTC)
    row = DashboardUserRow(
        name=user.name,
        role=user.role,
        team=user.team,
        password_hash=user.password_hash,
        created_at=now,
        updated_at=now,
    )
    try:
        session.add(row)
        session.flush()
    except IntegrityError:
        # Another add of the same name committed between the check and this insert.
        raise DashboardUserError(f"a dashboard user named {name!r} exists already") from None
    return row


def list_users(session: Session) -> list[DashboardUserRow]:
    return list(session.scalars(select(DashboardUserRow).order_by(DashboardUserRow.name)))


def all_users(session: Session, config: DashboardConfig) -> list[ListedUser]:
    """Config users, then stored ones; a stored user named like a config user is marked hidden."""
    names = _config_names(config)
    listed = [ListedUser(u.name, u.role, u.team, CONFIG) for u in config.users]
    listed += [
        ListedUser(row.name, row.role, row.team, DATABASE, hidden_by_config=row.name in names)
        for row in list_users(session)
    ]
    return listed


def hidden_stored_names(session: Session, config: DashboardConfig) -> list[str]:
    """Stored users that a config user of the same name hides. Each comes back into force, with its own
    password and role, if the config entry is removed: worth a warning wherever the two meet."""
    return [listed.name for listed in all_users(session, config) if listed.hidden_by_config]


def remove_user(session: Session, name: str, *, config: DashboardConfig) -> None:
    row = _find(session, name)
    if row is None:
        # A stored user hidden by a config one can still be removed; a config user only from the file.
        _refuse_config_user(name, config, "remove it")
        raise DashboardUserError(f"no dashboard user named {name!r} in the database")
    session.delete(row)
    session.flush()


def _password_target(session: Session, name: str, config: DashboardConfig) -> DashboardUserRow:
    _refuse_config_user(name, config, "change its password_hash")
    return _existing(session, name)


def check_password_change(session: Session, name: str, *, config: DashboardConfig) -> None:
    """Raises what :func:`set_password` would for this name, before a password is asked."""
    _password_target(session, name, config)


def set_password(
    session: Session, name: str, password: str, *, config: DashboardConfig, now: datetime | None = None
) -> DashboardUserRow:
    row = _password_target(session, name, config)
    row.password_hash = _hashed(password)
    row.updated_at = now or datetime.now(UTC)
    session.flush()
    return row


def set_role(
    session: Session,
    name: str,
    role: str,
    team: str | None,
    *,
    config: DashboardConfig,
    now: datetime | None = None,
) -> DashboardUserRow:
    _refuse_config_user(name, config, "change its role")
    row = _existing(session, name)
    user = _validated({"name": name, "role": role, "team": team, "password_hash": row.password_hash})
    row.role, row.team = user.role, user.team
    row.updated_at = now or datetime.now(UTC)
    session.flush()
    return row


def stored_users(session: Session) -> list[DashboardUserConfig]:
    """The stored users in the config's shape, for the login. A row that breaks the rules (edited by
    hand) is left out with a warning rather than stopping every other user's sign-in."""
    users = []
    for row in list_users(session):
        fields = {"name": row.name, "role": row.role, "team": row.team, "password_hash": row.password_hash}
        try:
            users.append(_validated(fields))
        except DashboardUserError as exc:
            log.warning("dashboard user %r in the database is ignored: %s", row.name, exc)
    return users
