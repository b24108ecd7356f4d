"""The 督办看板's figures from this node's case read model: the volume counters (case_volumes: whole
months from the month rows, the range's partial months from the day rows), a top-N of the most overdue
cases over two indexes of the dashboard columns of `cases` (services/intake/domain/dashboard.py), and the
case list as CSV read a page at a time — never every case of a range at once."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.intake.adapters.orm import CaseRow, CaseVolumeRow
from services.intake.domain import dashboard
from shared import divisions, ledger
from shared.db import counters

MOST_OVERDUE = 20
CSV_HEADER = ["案件编号", "事项", "类别", "行政区划", "承办机构", "登记日期", "状态", "集体访", "重复信访次数", "督办次数",
              "超期天数"]


@lru_cache(maxsize=64)
def divisions_within(code: str) -> tuple[str, ...]:
    """The division codes that lie within `code` (itself included)."""
    return tuple(c for c in divisions.table() if divisions.contains(code, c))


def buckets(date_from: date, date_to: date) -> list[str]:
    """The trend's buckets: each day (YYYY-MM-DD), or each month (YYYY-MM) when the range exceeds 62 days."""
    days = (date_to - date_from).days + 1
    if days <= 62:
        return [(date_from + timedelta(days=i)).isoformat() for i in range(days)]
    return sorted({(date_from + timedelta(days=i)).isoformat()[:7] for i in range(days)})


def _in_range(date_from: date, date_to: date, division: str | None) -> list:
    where = [CaseRow.registered_day >= date_from.isoformat(), CaseRow.registered_day <= date_to.isoformat()]
    if division:
        where.append(CaseRow.division.in_(divisions_within(division)))
    return where


def overview(s: Session, date_from: date, date_to: date, division: str | None, now: datetime,
             names: dict[str, str]) -> dict:
    """Cases registered (Beijing day) in [from, to] within `division`: their number, collective and repeat
    petitions, volumes per bucket by category, division and holder (each group's series, largest first),
    and the most overdue of them today."""
    keys = buckets(date_from, date_to)
    index = {key: i for i, key in enumerate(keys)}
    width = len(keys[0])
    trend: dict[str, dict[str, list[int]]] = {"category": {}, "division_name": {}, "holder_name": {}}
    total = collective = repeat = 0
    v = CaseVolumeRow
    where = [counters.periods_within(v.period, date_from, date_to, months=width == 7), v.cases > 0]
    if division:
        where.append(v.division.in_(divisions_within(division)))
    for period, category, div, holder, n, n_collective, n_repeat in s.execute(
            select(v.period, v.category, v.division, v.holder, v.cases, v.collective, v.repeat).where(*where)):
        i = index[period[:width]]
        for group, key in (("category", category or "其他"), ("division_name", divisions.name(div)),
                           ("holder_name", names.get(holder, holder))):
            trend[group].setdefault(key, [0] * len(keys))[i] += n
        total, collective, repeat = total + n, collective + n_collective, repeat + n_repeat

    def ranked(series: dict[str, list[int]]) -> list[tuple[str, list[int]]]:
        return sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))

    return {"from": date_from.isoformat(), "to": date_to.isoformat(), "division": division, "as_of": now.isoformat(),
            "total": total, "collective": collective, "repeat": repeat, "buckets": keys,
            "trend": {group: [{"name": k, "data": v} for k, v in ranked(series)] for group, series in trend.items()},
            "by_category": [{"name": k, "cases": sum(v)} for k, v in ranked(trend["category"])],
            "most_overdue": most_overdue(s, date_from, date_to, division, now, names)}


def most_overdue(s: Session, date_from: date, date_to: date, division: str | None, now: datetime,
                 names: dict[str, str], limit: int = MOST_OVERDUE) -> list[dict]:
    """The `limit` cases overdue longest today (ties: registered first): the top by earliest due date of a
    running clock and the top by worst lateness of a clock met late (two index walks; with the same
    tie-break, the true top lies within them), then read exactly from their clocks."""
    today = ledger.local_date(now).isoformat()
    # the registration day and division as expressions, not columns: SQLite would otherwise range over the
    # registration days (a year: 200,000 rows of a million) or a division instead of walking the due-date
    # and lateness indexes (which hold both)
    day = func.coalesce(CaseRow.registered_day, "")
    where = [day >= date_from.isoformat(), day <= date_to.isoformat()]
    if division:
        where.append(func.coalesce(CaseRow.division, "").in_(divisions_within(division)))
    then = (CaseRow.registered_day, CaseRow.case_id)
    candidates = {c.case_id: c for q in (
        select(CaseRow).where(*where, CaseRow.open_due < today).order_by(CaseRow.open_due, *then).limit(limit),
        select(CaseRow).where(*where, CaseRow.late_days > 0).order_by(CaseRow.late_days.desc(), *then).limit(limit))
        for c in s.scalars(q)}
    rows = [overdue_row(c, now, names) for c in candidates.values()]
    rows.sort(key=lambda r: (-r["days_late"], r["registered_date"], r["case_id"]))
    return [r for r in rows if r["days_late"] > 0][:limit]


def overdue_row(case: CaseRow, now: datetime, names: dict[str, str]) -> dict:
    st = case.state
    late = [{"clock": c["label"], "due_date": c["due_date"], "days_late": c["days_late"],
             "responsible": c["responsible"], "responsible_name": names.get(c["responsible"], c["responsible"])}
            for c in ledger.clocks(st, now) if c["supervised"] and c["state"] == "breached"]
    return {"case_id": case.case_id, "title": st.get("title"), "category": st.get("category") or "其他",
            "division": st["division"], "division_name": divisions.name(st["division"]),
            "holder": st["holder"], "holder_name": names.get(st["holder"], st["holder"]),
            "registered_date": ledger.local_date(st["registered_at"]).isoformat(),
            "status_label": ledger.STATUS_LABELS.get(st["status"], st["status"]),
            "orders": len(st.get("orders", [])), "overdue": late,
            "days_late": max((o["days_late"] for o in late), default=0)}


def case_csv(s: Session, date_from: date, date_to: date, division: str | None, now: datetime,
             names: dict[str, str], page: int = 500) -> Iterator[str]:
    """Every case of the range as CSV text (UTF-8 BOM first), one chunk per page of rows read."""
    today = ledger.local_date(now)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(CSV_HEADER)
    yield "\ufeff" + buf.getvalue()
    c = CaseRow
    q = (select(c.case_id, c.state, c.category, c.division, c.holder, c.registered_day, c.status, c.collective,
                c.orders, c.open_due, c.late_days)
         .where(*_in_range(date_from, date_to, division)).order_by(c.registered_day).execution_options(yield_per=page))
    for rows in s.execute(q).partitions():
        buf.seek(0), buf.truncate()
        for r in rows:
            out.writerow([r.case_id, r.state.get("title") or "", r.category or "其他", divisions.name(r.division),
                          names.get(r.holder, r.holder), r.registered_day, ledger.STATUS_LABELS.get(r.status, r.status),
                          "是" if r.collective else "否", r.state.get("repeat_count", 0), r.orders or 0,
                          dashboard.days_late(r.open_due, r.late_days, today)])
        yield buf.getvalue()
