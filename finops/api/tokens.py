"""Management tokens: create, list, revoke, and the lookup that authenticates an API call.

A token is hashed with the same installation secret as proxy keys (finops.keys), but lives in its own
table: a proxy key never opens the management API, and a management token never opens the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from finops.api.models import ManagementTokenRow
from finops.config import FinopsConfig
from finops.keys.hashing import key_hash, new_key, new_key_id, shown_prefix
from finops.keys.service import hash_secret
from finops.proxy.errors import ProxyError
from finops.proxy.tags import check_tag_value

Role = Literal["admin", "finance", "team"]
ROLES: tuple[Role, ...] = get_args(Role)
# Distinct from the proxy keys' "fo-", so an operator can tell which is which at a glance.
TOKEN_PREFIX = "fomt-"
NAME_MAX_CHARS = 128


class TokenError(ValueError):
    """A token operation that cannot be done, with a message that names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token_id: str
    token: str  # shown once, never stored
    role: Role
    team: str | None


def _checked(role: str, team: str | None, name: str | None) -> tuple[Role, str | None, str | None]:
    if role not in ROLES:
        raise TokenError(f"role must be one of {', '.join(ROLES)}, got {role!r}", "role")
    if role == "team":
        if team is None:
            raise TokenError("a team token needs a team", "team")
        try:
            team = check_tag_value("team", team)
        except ProxyError as exc:
            raise TokenError(exc.message, "team") from exc
    elif team is not None:
        raise TokenError(f"an {role} token reads every team; give a team only with role team", "team")
    if name is not None and not 1 <= len(name) <= NAME_MAX_CHARS:
        raise TokenError(f"name must be 1 to {NAME_MAX_CHARS} characters", "name")
    return role, team, name


def create_token(
    session: Session, config: FinopsConfig, role: str, team: str | None = None, name: str | None = None
) -> CreatedToken:
    checked_role, team, name = _checked(role, team, name)
    token = new_key(TOKEN_PREFIX)
    row = ManagementTokenRow(
        id=new_key_id("tok"),
        token_hash=key_hash(hash_secret(session, config), token),
        token_prefix=shown_prefix(token, TOKEN_PREFIX),
        role=checked_role,
        team=team,
        name=name,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return CreatedToken(row.id, token, checked_role, team)


def list_tokens(session: Session, include_revoked: bool = False) -> list[ManagementTokenRow]:
    query = select(ManagementTokenRow).order_by(ManagementTokenRow.created_at, ManagementTokenRow.id)
    if not include_revoked:
        query = query.where(ManagementTokenRow.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_token(session: Session, token_id: str) -> ManagementTokenRow:
    row = session.get(ManagementTokenRow, token_id)
    if row is None:
        raise TokenError(f"no management token with id {token_id!r}", "token_id")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def find_active_token(session: Session, secret: str, presented: str) -> ManagementTokenRow | None:
    """The live token row for what a caller presented, or None (unknown, revoked, or a proxy key)."""
    return session.scalars(
        select(ManagementTokenRow).where(
            ManagementTokenRow.token_hash == key_hash(secret, presented),
            ManagementTokenRow.revoked_at.is_(None),
        )
    ).first()
