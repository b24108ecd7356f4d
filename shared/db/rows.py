"""Rows written once and never changed (ledger events, 查询码 hashes, inbox and audit entries): checked
and inserted with Core statements on the unit of work's connection, not through the ORM. Per event the
ORM's identity map, flush and statement building cost more than the SQL itself; these rows are never
loaded as objects in the unit of work that writes them, so nothing goes stale."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Table, bindparam, exists, select
from sqlalchemy.orm import Session


@lru_cache(maxsize=None)
def _exists(table: Table, columns: tuple[str, ...]):
    return select(exists().where(*(table.c[c] == bindparam(c) for c in columns)))


def row_exists(s: Session, table: Table, **key: object) -> bool:
    """Is there a row with these column values (a primary or unique key)?"""
    return bool(s.connection().execute(_exists(table, tuple(sorted(key))), key).scalar())


def insert_rows(s: Session, table: Table, rows: list[dict]) -> None:
    s.connection().execute(table.insert(), rows)
