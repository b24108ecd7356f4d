"""督办看板 from the intake read model's dashboard columns (services/intake/web/dashboard_data.py) equals the
per-case computation over every case's state (what /ui/data/overview used to send row by row): volumes by
bucket, category, division and holder, collective and repeat petitions, the 20 most overdue cases and the
streamed case CSV; and migration intake_0004 backfills the columns the projection keeps."""
from __future__ import annotations

import csv
import io
import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from services.intake import handlers
from services.intake.adapters.orm import CaseRow, CaseVolumeRow
from services.intake.web import dashboard_data
from shared import divisions, ledger
from shared.bus.envelope import Event
from shared.db.migrations import alembic_config
from shared.launcher import REPO
from tests.unit.test_assessment_summary import COURT, NOW, START, generated_cases
from tests.unit.test_clocks import BUREAU, CITY, HRSS

NAMES = {BUREAU: "锦江区信访局", HRSS: "锦江区人力资源和社会保障局", COURT: "锦江区人民法院"}
N = 300


@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    """An intake read model at head with the generated cases (some collective, some with orders)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('intake') / 'intake.db'}"
    command.upgrade(alembic_config(REPO / "services" / "intake", url), "head")
    engine = sa.create_engine(url)
    rnd = random.Random(3)
    cases = generated_cases(N)
    for evs in cases:
        reg = evs[0]["payload"]
        reg.update(content="拖欠工资", collective=rnd.random() < 0.2, category=rnd.choice(("劳动社保", "征地拆迁", None)))
    stream = sorted((e for evs in cases for e in evs), key=lambda e: e["time"])
    with Session(engine) as s, s.begin():
        for seq, e in enumerate(stream, 1):
            assert handlers.project_event(s, CITY, Event(**e), seq)
    yield SimpleNamespace(url=url, engine=engine, stream=stream)
    engine.dispose()


def _states(engine) -> list[dict]:
    with Session(engine) as s:
        return [c.state for c in s.scalars(sa.select(CaseRow))]


def _expected(states, date_from: date, date_to: date, division: str | None, now: datetime) -> dict:
    """The figures counted case by case, from the states (the former browser-side aggregation)."""
    monthly = (date_to - date_from).days + 1 > 62
    rows = []
    for st in states:
        day = ledger.local_date(st["registered_at"])
        if not date_from <= day <= date_to or division and not divisions.contains(division, st["division"]):
            continue
        late = [c["days_late"] for c in ledger.clocks(st, now) if c["supervised"] and c["state"] == "breached"]
        rows.append({"case_id": st["case_id"], "bucket": day.isoformat()[:7] if monthly else day.isoformat(),
                     "day": day.isoformat(), "category": st.get("category") or "其他",
                     "division_name": divisions.name(st["division"]),
                     "holder_name": NAMES.get(st["holder"], st["holder"]), "collective": bool(st.get("collective")),
                     "repeat": st.get("repeat_count", 0) > 0, "days_late": max(late, default=0)})
    overdue = sorted((r for r in rows if r["days_late"] > 0), key=lambda r: (-r["days_late"], r["day"], r["case_id"]))
    return {"rows": rows, "most_overdue": [(r["case_id"], r["days_late"]) for r in overdue[:20]]}


PERIODS = [(START.date(), NOW.date()), (date(2030, 5, 10), date(2030, 6, 20)), (NOW.date() - timedelta(days=7), NOW.date())]


@pytest.mark.parametrize("date_from,date_to", PERIODS)
@pytest.mark.parametrize("division", [None, "510105", "510100"])
def test_overview_equals_the_per_case_figures(projected, date_from, date_to, division):
    now = NOW.astimezone(timezone.utc)
    with Session(projected.engine) as s:
        got = dashboard_data.overview(s, date_from, date_to, division, now, NAMES)
    want = _expected(_states(projected.engine), date_from, date_to, division, now)
    rows = want["rows"]
    assert got["total"] == len(rows) > 0
    assert got["collective"] == sum(r["collective"] for r in rows) and got["repeat"] == sum(r["repeat"] for r in rows)
    for group in ("category", "division_name", "holder_name"):
        counts = Counter((r[group], r["bucket"]) for r in rows)
        drawn = {(g["name"], b): n for g in got["trend"][group] for b, n in zip(got["buckets"], g["data"]) if n}
        assert drawn == dict(counts), group
    assert {c["name"]: c["cases"] for c in got["by_category"]} == Counter(r["category"] for r in rows)
    assert [(r["case_id"], r["days_late"]) for r in got["most_overdue"]] == want["most_overdue"]
    if (date_from, date_to, division) == (*PERIODS[0], None):
        assert got["collective"] and got["repeat"] and len(got["most_overdue"]) == 20
        assert len(got["buckets"]) == 9 and got["buckets"][0] == "2030-01"  # monthly beyond 62 days
        top = got["most_overdue"][0]
        assert top["overdue"] and top["overdue"][0]["days_late"] == top["days_late"] > 0


def test_case_csv_lists_every_case_of_the_range(projected):
    now = NOW.astimezone(timezone.utc)
    with Session(projected.engine) as s:
        text = "".join(dashboard_data.case_csv(s, PERIODS[0][0], PERIODS[0][1], "510105", now, NAMES, page=7))
    want = _expected(_states(projected.engine), *PERIODS[0], "510105", now)["rows"]
    assert text.startswith("\ufeff案件编号,事项,类别")
    table = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]
    assert sorted((r[0], int(r[-1])) for r in table) == sorted((r["case_id"], r["days_late"]) for r in want)
    assert {r[3] for r in table} == {"青羊区"}


def test_the_migration_backfills_the_dashboard_columns(projected):
    columns = [CaseRow.case_id, CaseRow.registered_day, CaseRow.collective, CaseRow.repeat, CaseRow.orders,
               CaseRow.open_due, CaseRow.late_days]
    volumes = sa.select(CaseVolumeRow).where(CaseVolumeRow.cases > 0)
    with Session(projected.engine) as s:
        kept = s.execute(sa.select(*columns).order_by(CaseRow.case_id)).all()
        counted = {(v.period, v.category, v.division, v.holder, v.cases, v.collective, v.repeat) for v in s.scalars(volumes)}
    cfg = alembic_config(REPO / "services" / "intake", projected.url)
    command.downgrade(cfg, "intake_0003")
    command.upgrade(cfg, "head")
    with Session(projected.engine) as s:
        assert s.execute(sa.select(*columns).order_by(CaseRow.case_id)).all() == kept
        assert {(v.period, v.category, v.division, v.holder, v.cases, v.collective, v.repeat)
                for v in s.scalars(volumes)} == counted
    assert len(kept) == N and any(r.open_due for r in kept) and any(r.late_days for r in kept)
    assert sum(c[4] for c in counted if len(c[0]) == 7) == sum(c[4] for c in counted if len(c[0]) == 10) == N



def _dump(engine, tables: list[str]) -> dict[str, list]:
    with engine.connect() as c:
        return {t: sorted(map(tuple, c.exec_driver_sql(f"SELECT * FROM {t}").all()), key=repr) for t in tables}


def test_folding_every_event_again_changes_nothing(projected):
    """Consumers are idempotent: a redelivered event (its replay check is a Core statement,
    shared/db/rows.py) adds no event row, query code or counter, and changes no state."""
    tables = ["cases", "case_events", "query_codes", "registrations", "case_volumes"]
    before = _dump(projected.engine, tables)
    assert len(before["case_events"]) == len(projected.stream)
    with Session(projected.engine) as s, s.begin():
        for seq, e in enumerate(projected.stream, 1):
            assert handlers.project_event(s, CITY, Event(**e), seq)
    assert _dump(projected.engine, tables) == before
