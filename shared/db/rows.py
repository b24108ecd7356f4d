"""Is there a row with this key? One cached Core statement on the unit of work's connection. Projections,
inbox and audit check and write their rows with Core statements (`s.connection().execute(table.insert(),
…)`), not ORM objects: per event the ORM's identity map, flush and statement building cost more than the
SQL itself."""
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

