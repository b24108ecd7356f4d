"""Counter tables kept by projections (the dashboard's volumes, the 考核 tallies): add to a row's counters,
creating the row on first use, in one statement.

`INSERT … ON CONFLICT (key) DO UPDATE SET n = table.n + excluded.n` is the same SQL on SQLite and
PostgreSQL, and an upsert means concurrent units of work never race to create one row. It is written
once per table as text: SQLAlchemy cannot cache its compiled on_conflict_do_update constructs, and
compiling one on every event cost more than the rest of the projection."""
from __future__ import annotations

from functools import lru_cache

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session


@lru_cache(maxsize=None)
def _upsert(table: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> TextClause:
    cols = keys + counters
    return text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters))


def add(s: Session, table: str, keys: dict[str, object], counts: dict[str, int], periods: list[str]) -> None:
    """Add `counts` to the row of each period (a day and its month, say) with these other key values."""
    stmt = _upsert(table, ("period", *keys), tuple(counts))
    s.execute(stmt, [{"period": p, **keys, **counts} for p in periods])
