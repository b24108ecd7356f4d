"""Rows a projection writes once and never changes (ledger events, 查询码 hashes): checked and inserted
with Core statements on the unit of work's connection, not through the ORM. Per event the ORM's
identity map, flush and statement building cost more than the SQL itself (a third of a fold, measured);
these rows are never loaded as objects in the unit of work that writes them, so nothing goes stale."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Table, bindparam, exists, select
from sqlalchemy.orm import Session


@lru_cache(maxsize=None)
def _exists(table: Table, column: str):
    return select(exists().where(table.c[column] == bindparam("value")))


def row_exists(s: Session, table: Table, column: str, value: object) -> bool:
    return bool(s.connection().execute(_exists(table, column), {"value": value}).scalar())


def insert_rows(s: Session, table: Table, rows: list[dict]) -> None:
    s.connection().execute(table.insert(), rows)
