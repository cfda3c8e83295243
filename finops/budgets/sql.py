"""INSERT ... ON CONFLICT DO NOTHING on Postgres and SQLite alike (INSERT OR IGNORE's portable form)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session


def insert_ignore(session: Session, table: Any) -> Any:
    """An insert of ``table`` that skips a row whose unique key exists (the caller adds .values())."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()
