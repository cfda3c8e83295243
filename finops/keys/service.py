"""API keys: create, list, revoke, and the lookup table the proxy keeps in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from finops.config import FinopsConfig
from finops.keys.hashing import key_hash, new_key, new_key_id, new_secret, shown_prefix
from finops.keys.models import ApiKeyRow, SettingRow
from finops.proxy.tags import KeyDefaults, check_tag_value

SECRET_SETTING = "api_key_hash_secret"


class KeyError_(ValueError):
    """A key operation that cannot be done, with a message for the operator."""


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key_id: str
    key: str  # shown once, never stored
    team: str
    feature: str | None


def hash_secret(session: Session, config: FinopsConfig) -> str:
    """The config's secret_key, else one generated once and kept in the database for every replica."""
    if config.secret_key:
        return config.secret_key
    row = session.get(SettingRow, SECRET_SETTING)
    if row is not None:
        return row.value
    try:
        with session.begin_nested():
            session.add(SettingRow(key=SECRET_SETTING, value=new_secret()))
    except IntegrityError:
        pass  # another process made it first; use theirs
    row = session.get(SettingRow, SECRET_SETTING)
    assert row is not None
    return row.value


def create_key(
    session: Session, config: FinopsConfig, team: str, feature: str | None = None, name: str | None = None
) -> CreatedKey:
    team = check_tag_value("team", team)
    feature = check_tag_value("feature", feature) if feature is not None else None
    if name is not None and not (1 <= len(name) <= 128 and name.isprintable()):
        raise KeyError_("a key's name is 1-128 printable characters")
    secret = hash_secret(session, config)
    key = new_key()
    row = ApiKeyRow(
        id=new_key_id(),
        key_hash=key_hash(secret, key),
        key_prefix=shown_prefix(key),
        team=team,
        default_feature=feature,
        name=name,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return CreatedKey(row.id, key, team, feature)


def list_keys(session: Session, include_revoked: bool = False) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise KeyError_(f"no API key with id {key_id!r}")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def active_key_table(session: Session) -> dict[str, KeyDefaults]:
    """hash -> who the key belongs to; the proxy checks a presented key against this in memory."""
    rows = session.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))
    return {row.key_hash: KeyDefaults(row.id, row.team, row.default_feature) for row in rows}
