"""Bulk, idempotent insertion of usage records into ``token_ledger``.

Postgres: COPY into a session-local staging table, then one INSERT ... ON CONFLICT DO NOTHING, which
is several times faster than multi-row INSERTs and still idempotent on ``request_id``.
SQLite (the embedded default): INSERT OR IGNORE in one executemany.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import psycopg
from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy import exc as sa_exc

from finops.ledger.models import TokenLedgerRow
from finops.ledger.record import COLUMNS, UsageRecord

_TABLE: Table = TokenLedgerRow.__table__  # type: ignore[assignment]
_COLUMN_LIST = ", ".join(COLUMNS)
_STAGING = "finops_ledger_staging"


def _insert_postgres(engine: Engine, records: Sequence[UsageRecord]) -> int:
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert conn is not None
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
                f"SELECT {_COLUMN_LIST} FROM token_ledger WITH NO DATA"
            )
            with cur.copy(f"COPY {_STAGING} ({_COLUMN_LIST}) FROM STDIN") as copy:
                for record in records:
                    copy.write_row(record)  # a NamedTuple in COLUMNS order
            cur.execute(
                f"INSERT INTO token_ledger ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {_STAGING} "
                "ON CONFLICT (request_id) DO NOTHING"
            )
            inserted: int = cur.rowcount
        conn.commit()
        return inserted
    except BaseException:
        raw.invalidate()  # a half-done COPY leaves the connection unusable; never return it to the pool
        raise
    finally:
        raw.close()


def _insert_generic(engine: Engine, records: Sequence[UsageRecord]) -> int:
    rows = [record._asdict() for record in records]
    statement = insert(_TABLE)
    if engine.dialect.name == "sqlite":
        statement = statement.prefix_with("OR IGNORE")
    with engine.begin() as conn:
        result = conn.execute(statement, rows)
        return int(result.rowcount or 0)


def insert_records(engine: Engine, records: Sequence[UsageRecord]) -> int:
    """Insert every record whose request_id is not in the ledger yet; returns how many were new.

    (SQLite's executemany reports -1 or a total that counts ignored rows as 0 depending on the driver;
    callers use the count for logs only.)
    """
    if not records:
        return 0
    if engine.dialect.name == "postgresql":
        return _insert_postgres(engine, records)
    return _insert_generic(engine, records)


def is_unavailable(exc: BaseException) -> bool:
    """The database is away or busy (retry later), as opposed to refusing these rows for their data."""
    unavailable = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        sqlite3.OperationalError,
        OSError,
        TimeoutError,
    )
    return isinstance(exc, unavailable)


def ledger_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(_TABLE)).scalar_one())
