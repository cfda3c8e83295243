"""The one place that creates database engines and sessions.

Services take a ``Session`` and never commit; the boundary (a CLI command, a task, the ledger writer)
owns the transaction through :func:`unit_of_work`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Engine, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# BIGINT on Postgres, but INTEGER on SQLite, where only "INTEGER PRIMARY KEY" auto-increments.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC time is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the dashboard read while the ledger writer writes; busy_timeout waits out the writer's lock.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


DEFAULT_CONNECT_TIMEOUT_S = 10


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # psycopg prepares a statement on its fifth run, and Postgres may then plan it once for any
    # parameters. Our range reads depend on the values: "min(started_at) WHERE id >= $1" with a generic
    # plan walks the whole started_at index (a second on 10M rows) where the planned-per-value query
    # reads one index entry. So no server-side prepares: every run is planned for its values. (Not a
    # plan_cache_mode startup option: PgBouncer refuses unknown startup parameters, and an explicit
    # "options" would replace the user's PGOPTIONS.)
    connect_args: dict[str, Any] = {"prepare_threshold": None, **kwargs.pop("connect_args", {})}
    if "connect_timeout" not in url.query:
        # Without it an unreachable server holds a caller for the OS's TCP timeout (minutes).
        connect_args.setdefault("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)
    return create_engine(url, connect_args=connect_args, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    with make_sessionmaker(engine)() as session, session.begin():
        yield session


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def engine_scope(database_url: str) -> Iterator[Engine]:
    """An engine for one CLI command: disposed (connections closed) when the command is done."""
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()
