"""考核 from the per-case summary rows (sv_case_summaries, SQL sums) equals the reference fold of every
case's events (domain.assessment.assess), on a generated set of cases with varied outcomes — on time,
late, extended, declined, replied, rated, reviewed, repeated, 督办 — for current and past periods, by
division and by agency; and the migration's backfill gives the same summaries as the projection."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from services.supervision import handlers
from services.supervision.adapters.orm import SvAssessmentCount, SvCaseSummary
from services.supervision.domain import assessment
from shared import clock, ledger
from shared.bus.envelope import Event
from shared.db.migrations import alembic_config
from shared.launcher import REPO
from tests.unit.test_clocks import BUREAU, CITY, CITY_HRSS, DIRECTORY, HRSS

CST = ledger.CST
NOW = datetime(2030, 9, 20, 15, 0, tzinfo=CST)
START = datetime(2030, 1, 1, 9, 0, tzinfo=CST)
COURT = "510104-fy"
DIVISIONS = ("510104", "510105")  # an unsigned case stays with the 信访局: 3 holders


def generated_cases(n: int, seed: int = 5) -> list[list[dict]]:
    """n cases registered between START and NOW, each with a random life (only what happened by NOW)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        cid = f"LF{i:05d}"
        t0 = START + timedelta(seconds=rnd.uniform(0, (NOW - START).total_seconds()))
        holder = rnd.choice((HRSS, HRSS, COURT))
        evs: list[tuple] = []
        add = lambda type_, at, agency=holder, **payload: evs.append((type_, at, agency, payload))  # noqa: E731
        add(ledger.REGISTERED, t0, BUREAU, category="劳动社保", division=rnd.choice(DIVISIONS), channel="visit",
            title=f"事项{i}", persons=1, flags=[])
        add(ledger.OFFERED, t0 + timedelta(minutes=1), BUREAU, to=holder,
            routing={"target": holder, "flags": ["skipped_level"] if rnd.random() < 0.1 else []})
        if rnd.random() < 0.95:
            add(ledger.SIGNED_FOR, t0 + timedelta(hours=rnd.uniform(1, 30)))
        t = t0 + timedelta(days=rnd.uniform(1, 22))  # 受理告知 due within 15 days: some late
        r = rnd.random()
        if r < 0.1:
            add(ledger.DECLINED, t, reason="不属于信访事项")
        elif r < 0.85:
            add(ledger.ACCEPTED, t)
            if rnd.random() < 0.2:
                add(ledger.EXTENDED, t + timedelta(days=rnd.uniform(5, 50)), days=rnd.randint(10, 30), approver="王局长")
            if rnd.random() < 0.75:
                t = t + timedelta(days=rnd.uniform(10, 95))
                add(ledger.REPLIED, t, title="信访处理意见书", text="答复")
                for _ in range(rnd.choice((0, 0, 1, 1, 2))):
                    t = t + timedelta(days=rnd.uniform(0.5, 10))
                    add(ledger.SATISFACTION_RATED, t, rating=rnd.choice(ledger.RATINGS), source="petitioner")
                if rnd.random() < 0.2:
                    t = t + timedelta(days=rnd.uniform(1, 20))
                    add(ledger.REVIEW_REQUESTED, t, body=CITY_HRSS)
                    if rnd.random() < 0.6:
                        add(ledger.REVIEW_DECIDED, t + timedelta(days=rnd.uniform(5, 45)), CITY_HRSS,
                            outcome="维持", text="复查意见")
        if rnd.random() < 0.15:
            add(ledger.REPEAT_LINKED, t0 + timedelta(days=rnd.uniform(1, 120)), BUREAU, channel="visit", title="再访")
        if rnd.random() < 0.15:
            level = rnd.choice(("督办", "挂牌督办"))
            add(ledger.SUPERVISION_ORDER, t0 + timedelta(days=rnd.uniform(16, 60)), CITY, clock="acceptance_notice",
                level=level, addressed_to=holder, supervisor=CITY, due_date="2030-01-01", days_late=3)
        evs = sorted((e for e in evs if e[1] <= NOW), key=lambda e: e[1])
        out.append([{"id": f"{cid}-{j}", "case_id": cid, "type": type_, "agency": agency, "actor": "t",
                     "time": at.astimezone(timezone.utc).isoformat(), "payload": payload,
                     "audience": [BUREAU, CITY, HRSS, COURT, CITY_HRSS]}
                    for j, (type_, at, agency, payload) in enumerate(evs)])
    return out


@pytest.fixture(scope="module")
def projected(tmp_path_factory):
    """A supervision database at head with the generated cases projected (in stream order)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sv') / 'supervision.db'}"
    command.upgrade(alembic_config(REPO / "services" / "supervision", url), "head")
    engine = sa.create_engine(url)
    cases = generated_cases(300)
    ctx = handlers.SupervisionContext(cfg=SimpleNamespace(agency=CITY), directory=DIRECTORY)
    stream = sorted((e for evs in cases for e in evs), key=lambda e: e["time"])
    with Session(engine) as s, s.begin():
        for seq, e in enumerate(stream, 1):
            assert handlers.project_event(s, ctx, Event(**e), seq)
    yield SimpleNamespace(url=url, engine=engine, cases=cases, ctx=ctx, stream=stream)
    engine.dispose()


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: NOW.astimezone(timezone.utc))


PERIODS = [  # (from, to): the current year, a past quarter (events after it are folded), a short range
    (START.date(), NOW.date()), (START.date(), datetime(2030, 3, 31).date()),
    (datetime(2030, 5, 10).date(), datetime(2030, 6, 20).date()), (NOW.date() - timedelta(days=7), NOW.date())]


@pytest.mark.parametrize("date_from,date_to", PERIODS)
@pytest.mark.parametrize("division,agency", [(None, None), ("510105", None), (None, COURT), ("510100", HRSS)])
def test_assessment_from_summaries_equals_the_fold_of_every_event(projected, date_from, date_to, division, agency):
    with Session(projected.engine) as s:
        fast = handlers.assessment_report(s, projected.ctx, date_from=date_from, date_to=date_to, division=division,
                                          agency=agency, with_cases=True)
    reference = assessment.assess(projected.cases, date_from=date_from, date_to=date_to, now=clock.now(), division=division,
                                  agency=agency, names=projected.ctx.name)
    assert fast.pop("computed_by") == CITY
    assert fast == reference
    if (date_from, date_to, division, agency) == (*PERIODS[0], None, None):
        t = fast["total"]  # the generated set covers every branch of the formulas
        assert t["cases"] == 300 and len(fast["by_agency"]) == 3 and len(fast["by_division"]) == 2
        for key in ("timely_acceptance", "on_time_completion", "evaluation_participation", "satisfaction",
                    "first_time_resolution", "repeat_rate"):
            assert 0 < t[key]["numerator"] < t[key]["denominator"], key
        assert t["skipped_level_visits"] and t["supervision_orders"] > t["listed_supervision"] > 0
        assert t["overdue"]["acceptance_notice"] and t["overdue"]["handling"] and t["overdue"]["review_decision"]


def test_a_past_period_has_cases_with_later_events(projected):
    """The past quarter above goes both ways: cases settled by its end (summed by SQL) and cases with
    events after it (folded up to its end) — e.g. accepted in April, counted as still running in March."""
    cutoff = assessment.end_of_day(PERIODS[1][1]).astimezone(timezone.utc)
    S = SvCaseSummary
    with Session(projected.engine) as s:
        q1 = [S.registered_day.between("2030-01-01", "2030-03-31")]
        settled = s.scalar(sa.select(sa.func.count()).where(*q1, S.last_event_at <= cutoff))
        later = s.scalar(sa.select(sa.func.count()).where(*q1, S.last_event_at > cutoff))
        report = handlers.assessment_report(s, projected.ctx, date_from=PERIODS[1][0], date_to=PERIODS[1][1],
                                            division=None, agency=None)
    assert settled > 10 and later > 10 and report["total"]["cases"] == settled + later
    assert report["as_of"] == "2030-03-31T23:59:59.999999+08:00"


def test_the_migration_backfills_the_summaries(projected):
    """supervision_0002 on a database that already holds cases gives the rows the projection keeps."""
    columns = [c for c in SvCaseSummary.__table__.columns]
    counters = sa.select(*SvAssessmentCount.__table__.columns).where(SvAssessmentCount.cases != 0)
    with Session(projected.engine) as s:
        kept = {r.case_id: tuple(r) for r in s.execute(sa.select(*columns))}
        counted = set(map(tuple, s.execute(counters)))
    cfg = alembic_config(REPO / "services" / "supervision", projected.url)
    command.downgrade(cfg, "supervision_0001")
    command.upgrade(cfg, "head")
    with Session(projected.engine) as s:
        backfilled = {r.case_id: tuple(r) for r in s.execute(sa.select(*columns))}
        assert set(map(tuple, s.execute(counters))) == counted
    assert len(kept) == 300 and backfilled == kept
    assert sum(c[3] for c in counted if len(c[0]) == 7) == sum(c[3] for c in counted if len(c[0]) == 10) == 300


def test_projecting_every_event_again_changes_nothing(projected):
    """A redelivered event (replay check: shared/db/rows.py) adds no event row and moves no counter."""
    tables = ["sv_cases", "sv_events", "sv_case_summaries", "sv_assessment_counts"]
    with projected.engine.connect() as c:
        before = {t: sorted(map(tuple, c.exec_driver_sql(f"SELECT * FROM {t}").all()), key=repr) for t in tables}
    assert len(before["sv_events"]) == len(projected.stream)
    with Session(projected.engine) as s, s.begin():
        for seq, e in enumerate(projected.stream, 1):
            assert handlers.project_event(s, projected.ctx, Event(**e), seq) is True
    with projected.engine.connect() as c:
        after = {t: sorted(map(tuple, c.exec_driver_sql(f"SELECT * FROM {t}").all()), key=repr) for t in tables}
    assert after == before
