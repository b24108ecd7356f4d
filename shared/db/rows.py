"""Is there a row with this key? Insert this ORM object without the ORM's flush. One prepared statement
(shared/db/prepared.py) each, on the unit of work's connection. Projections, inbox and audit check and
write their rows with prepared statements, not ORM objects: per event the ORM's identity map, flush and
statement building cost more than the SQL itself."""
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


@lru_cache(maxsize=None)
def _insert(table: Table) -> Prepared:
    return Prepared(table.insert())


def insert_object(s: Session | Connection, obj: object) -> None:
    """Insert an ORM object that was never added to the session, as it stands; a column left unset (None)
    gets its default, as the ORM's flush would give it."""
    table = obj.__table__
    _insert(table).run(s, {c.key: v for c in table.columns if (v := getattr(obj, c.key)) is not None})
