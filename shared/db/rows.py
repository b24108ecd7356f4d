"""Is there a row with this key? One prepared statement (shared/db/prepared.py) on the unit of work's
connection. Projections, inbox and audit check and write their rows with prepared statements, not ORM
objects: per event the ORM's identity map, flush and statement building cost more than the SQL itself."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Table, bindparam, exists, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared.db.prepared import Prepared


@lru_cache(maxsize=None)
def _exists(table: Table, columns: tuple[str, ...]) -> Prepared:
    return Prepared(select(exists().where(*(table.c[c] == bindparam(c) for c in columns))))


def row_exists(s: Session | Connection, table: Table, **key: object) -> bool:
    """Is there a row with these column values (a primary or unique key)?"""
    return bool(_exists(table, tuple(sorted(key))).scalar(s, key))

