"""Migration 0007 on both databases: the management_tokens table, its rules, and its way back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from finops.api.models import ManagementTokenRow
from finops.api.tokens import TokenError, create_token, find_active_token, list_tokens, revoke_token
from finops.config import FinopsConfig
from finops.db import make_engine, unit_of_work
from finops.keys.service import create_key, hash_secret
from finops.migrate import downgrade, upgrade


def test_tokens_table_rules_and_downgrade(db_url: str):
    engine = make_engine(db_url)
    config = FinopsConfig(database_url=db_url)
    try:
        with unit_of_work(engine) as session:
            team = create_token(session, config, "team", "search")
            admin = create_token(session, config, "admin", name="ops")
            proxy_key = create_key(session, config, "search").key
        with unit_of_work(engine) as session:
            secret = hash_secret(session, config)
            found = find_active_token(session, secret, team.token)
            assert found is not None and (found.role, found.team) == ("team", "search")
            # Same secret, same hash function, other table: a proxy key is no management token.
            assert find_active_token(session, secret, proxy_key) is None
            revoke_token(session, admin.token_id)
        with unit_of_work(engine) as session:
            assert find_active_token(session, secret, admin.token) is None
            assert [t.id for t in list_tokens(session)] == [team.token_id]
            assert len(list_tokens(session, include_revoked=True)) == 2
        # The database itself refuses a team token without a team, and a role it does not know.
        for role, team_name in (("team", None), ("finance", "search"), ("root", None)):
            with pytest.raises(IntegrityError), unit_of_work(engine) as session:
                session.add(
                    ManagementTokenRow(
                        id=f"tok_{role}",
                        token_hash=role * 4,
                        token_prefix="x",
                        role=role,
                        team=team_name,
                        name=None,
                        created_at=datetime.now(UTC),
                    )
                )
        with unit_of_work(engine) as session:
            for args, field in (
                (("owner", None), "role"),
                (("team", None), "team"),
                (("admin", "x"), "team"),
            ):
                with pytest.raises(TokenError) as raised:
                    create_token(session, config, *args)
                assert raised.value.field == field
            with pytest.raises(TokenError):
                revoke_token(session, "tok_missing")
    finally:
        engine.dispose()
    downgrade(db_url, "0006")
    engine = make_engine(db_url)
    try:
        assert "management_tokens" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    upgrade(db_url)
