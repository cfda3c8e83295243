"""Dashboard users kept in the database: added by the service or ``finops dashboard-user``, they sign in
beside the config's users (config wins on a shared name), see only their team when role team, and lose
their sessions when removed or given a new password. On SQLite and Postgres, through the real app.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask.testing
import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, inspect

import finops.models  # noqa: F401  (every model, so that metadata is whole)
from dashboards.app import create_app
from dashboards.cli import _user_warnings
from dashboards.passwords import hash_password
from finops.cli import main
from finops.config import DashboardConfig, DashboardUserConfig, FinopsConfig
from finops.dashboard_users import (
    DashboardUserError,
    DashboardUserRow,
    add_user,
    all_users,
    list_users,
    set_role,
)
from finops.db import Base, make_engine, unit_of_work
from finops.jobs.registry import run_job
from finops.ledger.store import insert_records
from finops.migrate import downgrade, upgrade
from tests.dashboards.test_access import callback_body
from tests.support.databases import fresh_sqlite
from tests.support.records import make_record

SECRET = "dashboard-users-test-secret"
PROG = "finops dashboard-user: "
# The config's own user, and its password.
CAROL = ("carol", "carol-config-pass")
# Hashing is deliberately slow; one hash serves every test.
CAROL_HASH = hash_password(CAROL[1])


def config_for(db_url: str, *config_users: DashboardUserConfig) -> FinopsConfig:
    return FinopsConfig(database_url=db_url, dashboard=DashboardConfig(users=list(config_users)))


def carol() -> DashboardUserConfig:
    return DashboardUserConfig(name=CAROL[0], role="finance", password_hash=CAROL_HASH)


def write_config(tmp_path: Path, config: FinopsConfig) -> str:
    path = tmp_path / "finops.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return str(path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def cli(monkeypatch: pytest.MonkeyPatch, config_path: str, *argv: str, stdin: str = "") -> int:
    """``finops dashboard-user ...`` as a user runs it, the password piped in on standard input."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["dashboard-user", *argv, "--config", config_path])


def add(engine: Engine, config: FinopsConfig, name: str, role: str, team: str | None, password: str) -> None:
    with unit_of_work(engine) as session:
        add_user(session, name, role, team, password, config=config.dashboard)


def client_of(config: FinopsConfig, engine: Engine, cache_s: float = 5.0) -> flask.testing.FlaskClient:
    return create_app(config, engine, secret=SECRET, db_users_cache_s=cache_s).server.test_client()


def log_in(client: flask.testing.FlaskClient, name: str, password: str) -> int:
    reply = client.post("/login", data={"username": name, "password": password, "next": "/"})
    return reply.status_code


def signed_in(client: flask.testing.FlaskClient) -> bool:
    status = client.get("/_dash-layout").status_code
    assert status in (200, 401)
    return status == 200


def test_users_added_by_the_service_and_the_cli_are_listed_without_hashes(
    engine, db_url, tmp_path, monkeypatch, capsys
):
    config = config_for(db_url, carol())
    path = write_config(tmp_path, config)
    add(engine, config, "fin", "finance", None, "finance-pass")
    argv = ("add", "ana", "--role", "team", "--team", "search", "--password-stdin")
    assert cli(monkeypatch, path, *argv, stdin="ana-pass\n") == 0
    assert "added dashboard user ana, role team, team search" in capsys.readouterr().out

    with unit_of_work(engine) as session:
        stored = {row.name: (row.role, row.team) for row in list_users(session)}
        assert stored == {"ana": ("team", "search"), "fin": ("finance", None)}
        assert [(u.name, u.source) for u in all_users(session, config.dashboard)] == [
            ("carol", "config"),
            ("ana", "database"),
            ("fin", "database"),
        ]
    assert cli(monkeypatch, path, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "TEAM", "SOURCE"]
    assert [line.split() for line in lines[1:]] == [
        ["carol", "finance", "-", "config"],
        ["ana", "team", "search", "database"],
        ["fin", "finance", "-", "database"],
    ]
    assert "scrypt" not in "\n".join(lines)


def test_a_database_user_signs_in_and_a_wrong_password_is_refused(engine, db_url):
    config = config_for(db_url, carol())
    add(engine, config, "fin", "finance", None, "finance-pass")
    client = client_of(config, engine)
    assert not signed_in(client)

    wrong = client.post("/login", data={"username": "fin", "password": "nope"})
    assert wrong.status_code == 200 and "Wrong user name or password" in wrong.text
    assert not signed_in(client)

    assert log_in(client, "fin", "finance-pass") == 302
    assert signed_in(client)
    # The config's user still signs in beside it.
    other = client_of(config, engine)
    assert log_in(other, *CAROL) == 302 and signed_in(other)


def test_a_user_added_while_the_app_runs_signs_in_at_once(engine, db_url):
    config = config_for(db_url)
    client = client_of(config, engine, cache_s=3600)
    page = client.get("/login").text
    assert "No dashboard users are configured" in page and "finops dashboard-user add" in page
    add(engine, config, "fin", "finance", None, "finance-pass")
    # A login reads the database afresh, whatever the cache holds.
    assert log_in(client, "fin", "finance-pass") == 302 and signed_in(client)
    assert "No dashboard users are configured" not in client.get("/login").text


# --- a team member sees only its team -----------------------------------------------------------------


def spend_of_two_teams(engine: Engine, config: FinopsConfig) -> None:
    """Calls of search and ads an hour ago, through the ledger and the rollup job as the proxy's are."""
    started = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    records = [
        make_record(started_at=started, team="search", feature="autocomplete"),
        make_record(started_at=started, team="ads", feature="ranking"),
    ]
    insert_records(engine, records)
    run_job(engine, config, "rollups", now=datetime.now(UTC))


def filter_options(client: flask.testing.FlaskClient, team_asked: str) -> dict[str, Any]:
    """The filter bar's callback, called as the browser calls it, asking for ``team_asked``."""
    deps = client.get("/_dash-dependencies").json
    assert isinstance(deps, list)
    dep = next(d for d in deps if "f-team.options" in d["output"])
    body = callback_body(dep, {"f-period": "30d", "f-team": team_asked})
    reply = client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.text[:300]
    response: dict[str, Any] = reply.json["response"]
    return response


def test_a_team_database_user_sees_only_its_team(engine, db_url):
    config = config_for(db_url)
    spend_of_two_teams(engine, config)
    add(engine, config, "ana", "team", "search", "search-pass")
    add(engine, config, "fin", "finance", None, "finance-pass")
    ana, fin = client_of(config, engine), client_of(config, engine)
    assert log_in(ana, "ana", "search-pass") == 302
    assert log_in(fin, "fin", "finance-pass") == 302

    mine = filter_options(ana, team_asked="ads")
    assert mine["f-team"] == {
        "options": [{"label": "search", "value": "search"}],
        "value": "search",
        "disabled": True,
    }
    assert [o["value"] for o in mine["f-feature"]["options"]] == ["autocomplete"]
    # The same request from finance does show ads: the check above could fail.
    theirs = filter_options(fin, team_asked="ads")
    assert {o["value"] for o in theirs["f-team"]["options"]} == {"ads", "search"}
    assert [o["value"] for o in theirs["f-feature"]["options"]] == ["ranking"]


def test_a_changed_role_applies_to_an_open_session(engine, db_url):
    config = config_for(db_url)
    spend_of_two_teams(engine, config)
    add(engine, config, "ana", "team", "search", "search-pass")
    ana = client_of(config, engine, cache_s=0)
    assert log_in(ana, "ana", "search-pass") == 302
    with unit_of_work(engine) as session:
        with pytest.raises(DashboardUserError, match="only role team takes a team"):
            set_role(session, "ana", "finance", "search", config=config.dashboard)
        set_role(session, "ana", "team", "ads", config=config.dashboard)
    assert filter_options(ana, team_asked="search")["f-team"]["value"] == "ads"
    with unit_of_work(engine) as session:
        set_role(session, "ana", "finance", None, config=config.dashboard)
    assert filter_options(ana, team_asked="search")["f-team"]["disabled"] is False


# --- sessions end -------------------------------------------------------------------------------------


def test_a_new_password_and_a_removal_end_existing_sessions(engine, db_url, tmp_path, monkeypatch, capsys):
    config = config_for(db_url)
    path = write_config(tmp_path, config)
    add(engine, config, "ana", "team", "search", "old-pass")
    client = client_of(config, engine, cache_s=0)
    assert log_in(client, "ana", "old-pass") == 302 and signed_in(client)

    assert cli(monkeypatch, path, "passwd", "ana", "--password-stdin", stdin="new-pass\n") == 0
    assert not signed_in(client)
    assert log_in(client, "ana", "old-pass") == 200
    assert log_in(client, "ana", "new-pass") == 302 and signed_in(client)

    assert cli(monkeypatch, path, "remove", "ana") == 0
    assert not signed_in(client)
    assert log_in(client, "ana", "new-pass") == 200
    assert "removed dashboard user ana" in capsys.readouterr().out


def test_stored_users_are_read_once_per_cache_period(engine, db_url):
    config = config_for(db_url)
    add(engine, config, "fin", "finance", None, "finance-pass")
    client = client_of(config, engine, cache_s=3600)
    assert log_in(client, "fin", "finance-pass") == 302
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "dashboard_users" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert signed_in(client)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # The login filled the cache: the requests after it cost no query at all.
    assert reads == []


def test_a_config_user_hides_a_database_user_of_the_same_name(engine, db_url, tmp_path, monkeypatch, capsys):
    # Stored first, then the same name appears in finops.yaml.
    add(engine, config_for(db_url), "carol", "admin", None, "carol-db-pass")
    config = config_for(db_url, carol())
    client = client_of(config, engine)
    assert log_in(client, "carol", "carol-db-pass") == 200
    assert log_in(client, *CAROL) == 302 and signed_in(client)

    path = write_config(tmp_path, config)
    assert cli(monkeypatch, path, "list") == 0
    listed = capsys.readouterr().out
    assert "carol  finance  -     config" in listed
    assert "database (hidden by config)" in listed
    # The hidden row can be cleaned up; the config user then stays, as the file says.
    assert cli(monkeypatch, path, "remove", "carol") == 0
    assert signed_in(client)
    with unit_of_work(engine) as session, pytest.raises(DashboardUserError, match="config user"):
        add_user(session, "carol", "admin", None, "again-pass", config=config.dashboard)


# --- bad input ----------------------------------------------------------------------------------------

BAD = [
    (["add", "bob", "--role", "team", "--password-stdin"], "has role team but no team"),
    (
        ["add", "bob", "--role", "admin", "--team", "search", "--password-stdin"],
        "only role team takes a team",
    ),
    (["add", "bob", "--role", "boss", "--password-stdin"], "role: Input should be"),
    (["add", "", "--role", "admin", "--password-stdin"], "name: String should have at least 1 character"),
    (["add", "bob", "--role", "admin", "--password-stdin"], "password: the password must not be empty"),
    (["add", "ana", "--role", "admin", "--password-stdin"], "'ana' exists already"),
    (["add", "carol", "--role", "admin", "--password-stdin"], "'carol' is a config user"),
    (["remove", "zed"], "no dashboard user named 'zed'"),
    (["remove", "carol"], "'carol' is a config user: remove it under dashboard.users"),
    (["passwd", "zed", "--password-stdin"], "no dashboard user named 'zed'"),
    (["passwd", "carol", "--password-stdin"], "'carol' is a config user: change its password_hash"),
    (["passwd", "ana", "--password-stdin"], "password: the password must not be empty"),
]


def test_bad_input_exits_2_with_one_line_that_names_the_problem(
    engine, db_url, tmp_path, monkeypatch, capsys
):
    config = config_for(db_url, carol())
    path = write_config(tmp_path, config)
    add(engine, config, "ana", "team", "search", "ana-pass")
    capsys.readouterr()
    for argv, problem in BAD:
        # An empty line: the empty password, for the cases that get as far as reading one.
        assert cli(monkeypatch, path, *argv, stdin="\n") == 2, argv
        out, err = capsys.readouterr()
        assert err.startswith(PROG) and problem in err and err.count("\n") == 1, (argv, err)
        assert out == ""
    with unit_of_work(engine) as session:
        assert [row.name for row in list_users(session)] == ["ana"]
    # Nothing above changed ana's password.
    assert log_in(client_of(config, engine), "ana", "ana-pass") == 302


def test_typed_passwords_that_differ_are_refused(engine, db_url, tmp_path, monkeypatch, capsys):
    typed = iter(["one-pass", "other-pass"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt: next(typed))
    path = write_config(tmp_path, config_for(db_url))
    assert cli(monkeypatch, path, "add", "bob", "--role", "admin") == 2
    assert capsys.readouterr().err == PROG + "the passwords differ\n"
    with unit_of_work(engine) as session:
        assert list_users(session) == []


def test_the_server_counts_database_users_and_a_database_not_migrated_yet_as_none(engine, db_url, tmp_path):
    config = config_for(db_url)
    assert [w for w in _user_warnings(config) if w.startswith("no dashboard users")]
    add(engine, config, "fin", "finance", None, "finance-pass")
    assert _user_warnings(config) == []
    with fresh_sqlite(tmp_path, migrate=False) as bare_url:
        assert _user_warnings(config_for(bare_url))[0].startswith("no dashboard users")


def test_the_server_warns_of_a_stored_user_hidden_by_a_config_one(engine, db_url):
    # Removing carol from finops.yaml would let the stored carol (admin, its own password) sign in again.
    add(engine, config_for(db_url), "carol", "admin", None, "carol-db-pass")
    warnings = _user_warnings(config_for(db_url, carol()))
    assert len(warnings) == 1
    assert "'carol' is both in finops.yaml and in the database" in warnings[0]
    assert "finops dashboard-user remove carol" in warnings[0]


def test_a_name_added_twice_at_once_is_refused_not_a_crash(pg_url):
    """Two adds of one name, each checking before the other commits: the second gets the clear refusal."""
    engine = make_engine(pg_url)
    config = config_for(pg_url)
    outcome: list[BaseException | None] = []
    try:
        with unit_of_work(engine) as first:
            add_user(first, "dan", "admin", None, "dan-pass-1", config=config.dashboard)

            def second_add() -> None:
                try:
                    with unit_of_work(engine) as second:
                        # Sees no committed dan, so its insert waits on the first's, then meets it.
                        add_user(second, "dan", "finance", None, "dan-pass-2", config=config.dashboard)
                    outcome.append(None)
                except BaseException as exc:  # handed to the test thread
                    outcome.append(exc)

            racer = threading.Thread(target=second_add)
            racer.start()
            racer.join(timeout=1.0)
            assert racer.is_alive(), "the second add did not wait for the first"
        racer.join(timeout=30)
        assert len(outcome) == 1 and isinstance(outcome[0], DashboardUserError), outcome
        assert "'dan' exists already" in str(outcome[0])
        with unit_of_work(engine) as session:
            assert [(row.name, row.role) for row in list_users(session)] == [("dan", "admin")]
    finally:
        engine.dispose()


# --- schema -------------------------------------------------------------------------------------------

TABLE = DashboardUserRow.__tablename__


def test_migration_0012_matches_the_model_and_downgrades(engine, db_url):
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if TABLE in repr(d)] == []
    downgrade(db_url, "0011")
    assert TABLE not in inspect(engine).get_table_names()
    upgrade(db_url)
    assert TABLE in inspect(engine).get_table_names()
