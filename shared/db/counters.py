"""Counter tables kept by projections (the dashboard's volumes, the 考核 tallies): add to a row's counters,
creating the row on first use, in one statement; read a date range back from as few rows as possible.
Each event counts in its day's row ('2026-11-29') and its month's ('2026-11').

`INSERT … ON CONFLICT (key) DO UPDATE SET n = table.n + excluded.n` is the same SQL on SQLite and
PostgreSQL, and an upsert means concurrent units of work never race to create one row. It is written
once per table as text: SQLAlchemy cannot cache its compiled on_conflict_do_update constructs, and
compiling one on every event cost more than the rest of the projection."""
from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import ColumnElement, and_, func, or_, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared.db.prepared import Prepared


@lru_cache(maxsize=None)
def _upsert(table: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> Prepared:
    cols = keys + counters
    return Prepared(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
                         f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
                         + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)))


def add(s: Session | Connection, table: str, keys: dict[str, object], counts: dict[str, int],
        periods: list[str]) -> None:
    """Add `counts` to the row of each period (a day and its month, say) with these other key values."""
    stmt = _upsert(table, ("period", *keys), tuple(counts))
    stmt.run(s, [{"period": p, **keys, **counts} for p in periods])


def periods_within(period: ColumnElement, date_from: date, date_to: date, months: bool = True) -> ColumnElement:
    """The condition on a counter table's `period` column that selects [from, to] once: the rows of the
    months it covers whole (unless `months` is False) and the day rows of the rest."""
    whole, days = [], []
    first = date_from.replace(day=1)
    while months and first <= date_to:
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        a, b = max(first, date_from), min(last, date_to)
        if (a, b) == (first, last):
            whole.append(first.isoformat()[:7])
        else:
            days.append((a, b))
        first = last + timedelta(days=1)
    if not months:
        days = [(date_from, date_to)]
    return or_(period.in_(whole), *[and_(period >= a.isoformat(), period <= b.isoformat(), func.length(period) == 10)
                                    for a, b in days])
