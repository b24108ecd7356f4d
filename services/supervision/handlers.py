"""Supervision handlers: one function per command or event. Each runs inside the caller's unit of work.

Commands run on the node that owes the act (the holder; the reviewing body for 复查/复核 decisions),
check the statutory clocks (shared.ledger.clocks via domain.rules), and stage their event in the
outbox; the event is folded into this node's projection in the same transaction, so the next command
sees it at once (the consumer later skips it by its event id)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from itertools import groupby

from sqlalchemy import and_, bindparam, case as when, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.supervision.adapters.orm import (Meta, SvAssessmentCount, SvCase, SvCaseSummary, SvDocument, SvEvent,
                                               SvNotice)
from services.supervision.domain import assessment, rules
from shared import clock, divisions, ledger
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.config import Directory, NodeConfig
from shared.db import counters, rows
from shared.db.plumbing import audit
from shared.db.prepared import Prepared
from shared.errors import NotFound
from shared.web import Principal

NOTICE_KINDS = {ledger.SUPERVISION_REMINDER: "reminder", ledger.SUPERVISION_ORDER: "order",
                ledger.ACCOUNTABILITY: "accountability"}
DOCUMENT_KINDS = {ledger.REPLIED: ("reply", "信访处理意见书"), ledger.REVIEW_DECIDED: ("review", "复查意见书"),
                  ledger.RE_REVIEW_DECIDED: ("re_review", "复核意见书")}
OPEN_STATUSES_EXCLUDED = ("terminated", "declined")


@dataclass
class SupervisionContext:
    cfg: NodeConfig
    directory: Directory
    remind_days: tuple[int, ...] = (3,)
    grace: timedelta = timedelta(minutes=10)  # the checker judges the clocks as they stood this long ago

    def checker_now(self) -> datetime:
        """An act done just before a deadline may still be on its way here (outbox relay, bus, consumer):
        the checker looks at the clocks as of `grace` ago, so such an act is not taken for a breach."""
        return clock.now() - self.grace

    @property
    def agency(self) -> str:
        return self.cfg.agency

    def name(self, agency: str | None) -> str:
        entry = self.directory.get(agency) if agency else None
        return entry.name if entry else (agency or "")


_WRITE_LOCK = Prepared(text("UPDATE sv_meta SET key = key WHERE 0"))


def write_lock(s: Session) -> None:
    """Serialise read-modify-write of a case's folded state. PostgreSQL: the row lock (SELECT … FOR
    UPDATE) does it. SQLite: pysqlite opens the transaction only at the first write, so reads before
    it see no lock and two writers could fold into the same stale state (a lost update); a no-op write
    first takes SQLite's write lock (waiting on the busy timeout), then the state is read."""
    if s.bind.dialect.name == "sqlite":
        _WRITE_LOCK.run(s, {})


# --- projection ------------------------------------------------------------------------------------

NOT_SHARED = "not shared"
# Statements prepared once (shared/db/prepared.py): SQLAlchemy's execution path cost more than the SQL
_cases, _summaries = SvCase.__table__, SvCaseSummary.__table__
_CASE_KNOWN = Prepared(select(_cases.c.case_id).where(_cases.c.case_id == bindparam("case_id")))
_CASE_STATE = Prepared(select(_cases.c.state).where(_cases.c.case_id == bindparam("case_id")).with_for_update())
_CASE_INSERT, _EVENT_INSERT = Prepared(_cases.insert()), Prepared(SvEvent.__table__.insert())
_SUMMARY_INSERT = Prepared(_summaries.insert())
_CASE_UPDATE = Prepared(_cases.update().where(_cases.c.case_id == bindparam("the_case")))
_SUMMARY = Prepared(select(_summaries).where(_summaries.c.case_id == bindparam("case_id")))
_SUMMARY_UPDATE = Prepared(_summaries.update().where(_summaries.c.case_id == bindparam("the_case")))


def project_event(s: Session, ctx: SupervisionContext, ev: Event, stream_seq: int | None,
                  backfill: bool = False) -> bool | str:
    """Fold one ledger event into this node's supervision projection. Idempotent (keyed by event id).
    Returns False for a case this node has just come to share without its history (the caller then
    replays that history with backfill=True), NOT_SHARED (truthy: nothing to replay) for a case this
    node does not share, True otherwise."""
    db = s.connection()
    if ctx.agency not in ev.audience and not backfill and _CASE_KNOWN.first(db, {"case_id": ev.case_id}) is None:
        return NOT_SHARED  # (decided without taking the write lock; nor can it be a replay: no event rows)
    write_lock(s)
    if rows.row_exists(db, SvEvent.__table__, event_id=ev.id):
        return True
    # Prepared statements, not ORM objects: per event the ORM's identity map and flush cost more than the
    # SQL. (Code that changes a case through the ORM loads it with populate_existing, so it sees these writes.)
    before = _CASE_STATE.scalar(db, {"case_id": ev.case_id})
    if before is None and ev.type != ledger.REGISTERED:
        return False
    state = ledger.apply(before, ev.as_dict())
    supervisor = rules.supervising_bureau(ctx.directory, state)
    values = dict(state=state, status=state["status"], division=state["division"], holder=state["holder"],
                  supervisor=supervisor, leader=(state.get("leader") or {}).get("name"),
                  next_check=_next_look(ctx, state) if supervisor == ctx.agency else None)
    if before is None:
        _CASE_INSERT.run(db, dict(case_id=ev.case_id, registered_at=datetime.fromisoformat(ev.time), **values))
    else:
        _CASE_UPDATE.run(db, {**values, "the_case": ev.case_id})
    _keep_summary(db, ev.case_id, state, ev.time)
    _EVENT_INSERT.run(db, dict(
        event_id=ev.id, case_id=ev.case_id, stream_seq=stream_seq, type=ev.type, agency=ev.agency, actor=ev.actor,
        time=ev.time, audience=list(ev.audience), payload=ev.payload))
    p = ev.payload
    if ev.type in NOTICE_KINDS:
        s.add(SvNotice(event_id=ev.id, kind=NOTICE_KINDS[ev.type], case_id=ev.case_id, clock=p["clock"],
                       level=p.get("level"), addressed_to=p.get("addressed_to") or p.get("body"),
                       supervisor=p.get("supervisor") or ev.agency, due_date=p["due_date"],
                       days_late=p.get("days_late", 0), issued_at=ev.time, payload=p))
    elif ev.type in DOCUMENT_KINDS and "text" in p:
        kind, title = DOCUMENT_KINDS[ev.type]
        s.add(SvDocument(id=ev.id, case_id=ev.case_id, kind=kind, title=p.get("title") or title, text=p["text"],
                         sha256=hashlib.sha256(p["text"].encode()).hexdigest(), agency=ev.agency, actor=ev.actor,
                         issued_at=ev.time))
    return True


def _next_look(ctx: SupervisionContext, state: dict) -> str | None:
    """The day this node's checker should look at a case it supervises: today when a 督查督办 notice is due
    now, else the first day one may become due. (Worked out as the case changes: the checker used to look
    at every case again after each of its events — a unit of work each, mostly to find nothing due.)"""
    now = ctx.checker_now()
    if rules.pending_notices(state, now, remind_days=ctx.remind_days, supervisor=ctx.agency,
                             escalation=rules.escalation_bureau(ctx.directory, ctx.agency), names=ctx.name):
        return ledger.local_date(now).isoformat()
    nxt = rules.next_check(state, now, ctx.remind_days)
    return nxt.isoformat() if nxt else None


def _keep_summary(db: Connection, case_id: str, state: dict, event_time: str) -> None:
    """The case's 考核 summary row, recomputed from its new state in the same unit of work, and its
    contribution to the counters moved from what it was to what it is."""
    old = _SUMMARY.first(db, {"case_id": case_id})
    at = assessment.utc(event_time)
    row = {**(old or {}), "case_id": case_id, "holder": state["holder"], "division": state["division"],
           "last_event_at": max(assessment.utc(old["last_event_at"]), at) if old else at,
           **assessment.summary(state)}
    if old is None:
        _SUMMARY_INSERT.run(db, row)
    else:
        _SUMMARY_UPDATE.run(db, {**row, "the_case": case_id})
    before, after = (_contribution(old) if old else None), _contribution(row)
    if after != before:
        _count(db, before, -1)
        _count(db, after, +1)


def _contribution(row) -> tuple[tuple[str, str, str], tuple[int, ...]]:
    tally = assessment.settled_tally(row)
    return (row["registered_day"], row["holder"], row["division"]), tuple(tally[c] for c in assessment.COUNTERS)


def _count(db: Connection, contribution: tuple | None, sign: int) -> None:
    """Add (sign=+1) or take away (-1) a case's settled tally to its day's and its month's counters."""
    if contribution is None:
        return
    (day, holder, division), values = contribution
    counters.add(db, SvAssessmentCount.__tablename__, {"holder": holder, "division": division},
                 {c: sign * v for c, v in zip(assessment.COUNTERS, values)}, [day, day[:7]])


def durable_epoch(s: Session, new_epoch: str) -> str:
    """The epoch of this database, naming its durable consumer: a fresh (or wiped) database gets a new
    consumer, which replays the whole ledger, so the projection is rebuilt from the events."""
    row = s.get(Meta, "durable_epoch")
    if row is None:
        row = Meta(key="durable_epoch", value=new_epoch)
        s.add(row)
    return row.value


# --- commands --------------------------------------------------------------------------------------

def _case(s: Session, case_id: str) -> SvCase:
    write_lock(s)
    case = s.get(SvCase, case_id, with_for_update=True, populate_existing=True)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在或未与本机构共享 (not found)")
    return case


def _emit(s: Session, ctx: SupervisionContext, case: SvCase, type_: str, payload: dict, actor: str,
          extra_audience=(), event_id: str | None = None) -> Event:
    """Stage the event in the outbox (same transaction) and fold it into the projection at once."""
    st = case.state
    audience = sorted((set(st.get("audience", [])) | set(extra_audience) | {ctx.agency}) - {st.get("reported_agency")})
    ev = Event(case_id=case.case_id, type=type_, agency=ctx.agency, actor=actor, payload=payload, audience=audience,
               **({"id": event_id} if event_id else {}))
    ev = outbox.stage(s, ev)
    project_event(s, ctx, ev, None)
    s.refresh(case)  # the fold wrote the row with Core statements: the caller goes on with the new state
    return ev


def _act(s: Session, ctx: SupervisionContext, case: SvCase, who: Principal, type_: str, payload: dict,
         extra_audience=(), detail: str = "") -> dict:
    _emit(s, ctx, case, type_, payload, who.user, extra_audience)
    audit(s, agency=ctx.agency, actor=who.user, action=type_, object_id=case.case_id, detail=detail)
    return case_view(s, ctx, case, clock.now())


def accept(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, notice: str | None) -> dict:
    """受理: the holder accepts and tells the petitioner in writing (受理告知)."""
    case = _case(s, case_id)
    rules.check_acceptance(case.state, ctx.agency, ctx.name)
    return _act(s, ctx, case, who, ledger.ACCEPTED, {"notice": notice or "您反映的事项已依法受理，我单位将在60日内办结并书面答复。"})


def decline(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, reason: str) -> dict:
    """不予受理: with the reason, told to the petitioner in writing."""
    case = _case(s, case_id)
    rules.check_acceptance(case.state, ctx.agency, ctx.name)
    return _act(s, ctx, case, who, ledger.DECLINED, {"reason": reason}, detail=reason)


def reply(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, title: str | None, text: str) -> dict:
    """答复: the written 信访处理意见书; stored as a document (its id is the event id)."""
    case = _case(s, case_id)
    rules.check_reply(case.state, ctx.agency, ctx.name)
    rules.check_document_text(text)
    return _act(s, ctx, case, who, ledger.REPLIED, {"title": title or "信访处理意见书", "text": text,
                                                     "sha256": hashlib.sha256(text.encode()).hexdigest()})


def extend(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, days: int, approver: str,
           reason: str) -> dict:
    """延期: once, ≤ 30 days, approved by `approver` (recorded)."""
    case = _case(s, case_id)
    rules.check_extension(case.state, ctx.agency, days, clock.now(), ctx.name)
    return _act(s, ctx, case, who, ledger.EXTENDED, {"days": days, "approver": approver, "reason": reason},
                detail=f"{days}日，批准人{approver}")


def rate(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, rating: str, source: str,
         note: str | None) -> dict:
    """满意度: 满意 / 基本满意 / 不满意, from the petitioner or a 回访 (follow-up)."""
    case = _case(s, case_id)
    stage = rules.check_rating(case.state, ctx.agency, ctx.name)
    return _act(s, ctx, case, who, ledger.SATISFACTION_RATED,
                {"rating": rating, "source": source, "stage": stage, "note": note})


def request_review(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, reason: str | None) -> dict:
    """复查申请: the next-higher body joins the audience, so its node gets the case (with its history)."""
    case = _case(s, case_id)
    body = rules.check_review_request(case.state, ctx.agency, clock.now(), ctx.directory, ctx.name)
    return _act(s, ctx, case, who, ledger.REVIEW_REQUESTED, {"body": body.agency, "body_name": body.name,
                                                              "reason": reason}, extra_audience={body.agency})


def decide_review(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, outcome: str, text: str) -> dict:
    """复查意见 by the reviewing body."""
    case = _case(s, case_id)
    rules.check_review_decision(case.state, ctx.agency, ctx.name)
    rules.check_document_text(text)
    return _act(s, ctx, case, who, ledger.REVIEW_DECIDED, {"outcome": outcome, "title": "复查意见书", "text": text})


def request_re_review(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, reason: str | None) -> dict:
    """复核申请 to the body above the reviewing one."""
    case = _case(s, case_id)
    body = rules.check_re_review_request(case.state, ctx.agency, clock.now(), ctx.directory, ctx.name)
    return _act(s, ctx, case, who, ledger.RE_REVIEW_REQUESTED, {"body": body.agency, "body_name": body.name,
                                                                 "reason": reason}, extra_audience={body.agency})


def decide_re_review(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, outcome: str,
                     text: str) -> dict:
    """复核意见: final; the case is terminated (三级终结)."""
    case = _case(s, case_id)
    rules.check_re_review_decision(case.state, ctx.agency, ctx.name)
    rules.check_document_text(text)
    return _act(s, ctx, case, who, ledger.RE_REVIEW_DECIDED, {"outcome": outcome, "title": "复核意见书", "text": text})


def assign_leader(s: Session, ctx: SupervisionContext, case_id: str, who: Principal, leader: str,
                  title: str | None) -> dict:
    """领导包案: a named leader owns the case until it is settled."""
    case = _case(s, case_id)
    rules.not_terminated(case.state)
    return _act(s, ctx, case, who, ledger.LEADER_ASSIGNED, {"leader": leader, "title": title}, detail=leader)


# --- 督查督办 checker ------------------------------------------------------------------------------

def cases_to_check(s: Session, ctx: SupervisionContext, today: date) -> list[str]:
    """Cases this node supervises with something possibly due by today."""
    return list(s.scalars(select(SvCase.case_id).where(SvCase.supervisor == ctx.agency,
                                                        SvCase.next_check.is_not(None),
                                                        SvCase.next_check <= today.isoformat())
                          .order_by(SvCase.next_check).limit(500)))


def check_case(s: Session, ctx: SupervisionContext, case_id: str, now: datetime) -> int:
    """Issue the 督查督办 events due for one case (deterministic ids) and schedule its next look."""
    write_lock(s)
    case = s.get(SvCase, case_id, with_for_update=True, populate_existing=True)
    if case is None or case.supervisor != ctx.agency:
        return 0
    escalation = rules.escalation_bureau(ctx.directory, ctx.agency)
    issued = 0
    for notice in rules.pending_notices(case.state, now, remind_days=ctx.remind_days, supervisor=ctx.agency,
                                        escalation=escalation, names=ctx.name):
        if s.scalar(select(SvEvent.pos).where(SvEvent.event_id == notice.id)) is not None:
            continue
        _emit(s, ctx, case, notice.type, notice.payload, "督查督办", notice.audience, event_id=notice.id)
        issued += 1
    nxt = rules.next_check(case.state, now, ctx.remind_days)
    case.next_check = nxt.isoformat() if nxt else None
    return issued


# --- views -----------------------------------------------------------------------------------------

def _notice_json(ctx: SupervisionContext, n: SvNotice, clocks: dict[str, dict] | None) -> dict:
    c = (clocks or {}).get(n.clock)
    out = {"id": n.event_id, "kind": n.kind, "case_id": n.case_id, "clock": n.clock,
           "clock_label": ledger.CLOCK_LABELS.get(n.clock, n.clock), "level": n.level,
           "addressed_to": n.addressed_to, "addressed_to_name": ctx.name(n.addressed_to),
           "supervisor": n.supervisor, "supervisor_name": ctx.name(n.supervisor), "due_date": n.due_date,
           "days_late": n.days_late, "issued_at": n.issued_at, "note": n.payload.get("note")}
    # An act done in time whose event arrived after the order was issued (e.g. its node was cut off from
    # the bus) proves the breach wrong: the order and the record are then shown as withdrawn.
    withdrawn = bool(c and c["state"] == "met")
    if n.kind == "order":
        done = bool(c and c["done_at"])
        status = "withdrawn" if withdrawn else "closed" if done else "open"
        out.update(status=status, status_label={"withdrawn": "已撤销（实际按期办结）", "closed": "已办结",
                                                "open": "督办中"}[status],
                   done_at=c["done_at"] if c else None, days_late_now=c["days_late"] if c else n.days_late)
    elif n.kind == "accountability":
        out.update(body=n.payload.get("body"), body_name=ctx.name(n.payload.get("body")),
                   breach_no=n.payload.get("breach_no"), days_late_now=c["days_late"] if c else n.days_late,
                   status="withdrawn" if withdrawn else "recorded",
                   status_label="已撤销（实际按期办结）" if withdrawn else "已记录")
    else:
        out.update(days_before=n.payload.get("days_before"))
    return out


def case_view(s: Session, ctx: SupervisionContext, case: SvCase, now: datetime) -> dict:
    st = case.state
    clocks = ledger.clocks(st, now)
    by_name = {c["name"]: c for c in clocks}
    notices = s.scalars(select(SvNotice).where(SvNotice.case_id == case.case_id).order_by(SvNotice.issued_at))
    docs = s.scalars(select(SvDocument).where(SvDocument.case_id == case.case_id).order_by(SvDocument.issued_at))
    grouped: dict[str, list] = {"reminder": [], "order": [], "accountability": []}
    for n in notices:
        grouped[n.kind].append(_notice_json(ctx, n, by_name))
    return {
        "case_id": case.case_id, "version": st.get("version"), "status": st["status"],
        "status_label": ledger.STATUS_LABELS.get(st["status"]), "title": st.get("title"), "category": st.get("category"), "division": st["division"],
        "holder": st["holder"], "holder_name": ctx.name(st["holder"]),
        "supervisor": case.supervisor, "supervisor_name": ctx.name(case.supervisor),
        "registered_at": st["registered_at"], "clocks": clocks, "acceptance": st.get("acceptance"),
        "extension": st.get("extension"), "reply": st.get("reply"), "review": st.get("review"),
        "re_review": st.get("re_review"), "terminated": st.get("terminated"), "leader": st.get("leader"),
        "satisfaction": st.get("satisfaction"), "ratings": st.get("ratings", []), "flags": st.get("flags", []),
        "reminders": grouped["reminder"], "orders": grouped["order"], "accountability": grouped["accountability"],
        "documents": [{"id": d.id, "kind": d.kind, "title": d.title, "agency": d.agency,
                       "agency_name": ctx.name(d.agency), "issued_at": d.issued_at, "sha256": d.sha256} for d in docs],
    }


def get_case_view(s: Session, ctx: SupervisionContext, case_id: str) -> dict:
    case = s.get(SvCase, case_id)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在或未与本机构共享 (not found)")
    return case_view(s, ctx, case, clock.now())


def notices(s: Session, ctx: SupervisionContext, kind: str, scope: str, status: str | None) -> list[dict]:
    """This node's queue: notices addressed to it (scope=mine), issued by it (scope=issued), or all it shares."""
    q = select(SvNotice, SvCase).join(SvCase, SvCase.case_id == SvNotice.case_id).where(SvNotice.kind == kind)
    if scope == "mine":
        q = q.where(SvNotice.addressed_to == ctx.agency)
    elif scope == "issued":
        q = q.where(SvNotice.supervisor == ctx.agency)
    now = clock.now()
    out = []
    for n, case in s.execute(q.order_by(SvNotice.issued_at)):
        item = _notice_json(ctx, n, {c["name"]: c for c in ledger.clocks(case.state, now)})
        item.update(title=case.state.get("title"), case_status=case.status)
        if status is None or item.get("status") == status:
            out.append(item)
    return out


def cases_list(s: Session, ctx: SupervisionContext, *, leader: str | None = None, scope: str = "held",
               open_only: bool = True) -> list[dict]:
    q = select(SvCase)
    if leader is not None:
        q = q.where(SvCase.leader == leader)
    elif scope == "held":
        q = q.where(SvCase.holder == ctx.agency)
    elif scope == "supervised":
        q = q.where(SvCase.supervisor == ctx.agency)
    if open_only:
        q = q.where(SvCase.status.not_in(OPEN_STATUSES_EXCLUDED))
    now = clock.now()
    out = []
    for case in s.scalars(q.order_by(SvCase.registered_at)):
        st = case.state
        out.append({"case_id": case.case_id, "title": st.get("title"), "status": st["status"],
                    "status_label": ledger.STATUS_LABELS.get(st["status"]), "holder": st["holder"],
                    "holder_name": ctx.name(st["holder"]), "leader": st.get("leader"),
                    "clocks": [{k: c[k] for k in ("name", "label", "state", "state_label", "due_date", "days_left",
                                                  "days_late", "responsible")} for c in ledger.clocks(st, now)]})
    return out


def document(s: Session, ctx: SupervisionContext, doc_id: str) -> dict:
    d = s.get(SvDocument, doc_id)
    if d is None:
        raise NotFound(f"文书 {doc_id} 不存在 (not found)")
    return {"id": d.id, "case_id": d.case_id, "kind": d.kind, "title": d.title, "text": d.text, "sha256": d.sha256,
            "agency": d.agency, "agency_name": ctx.name(d.agency), "actor": d.actor, "issued_at": d.issued_at}


def assessment_report(s: Session, ctx: SupervisionContext, *, date_from: date, date_to: date, division: str | None,
                      agency: str | None, with_cases: bool = False) -> dict:
    """考核 over the cases this node shares (see domain/assessment.py for the formulas): the same figures
    as assessment.assess over the cases' events, without folding them. The counters give every case's
    settled tally (whole months from the month rows, the rest from the day rows); the clocks still running
    that are breached by the evaluation day are added from the summary rows (an index on their earliest
    due date); the cases with an event after the evaluation moment (a past period) are taken out again
    and their events folded up to that moment instead."""
    as_of = assessment.evaluation_moment(date_to, clock.now())
    cutoff, today = as_of.astimezone(timezone.utc), ledger.local_date(as_of).isoformat()
    wanted = lambda d: not division or divisions.contains(division, d)  # noqa: E731
    groups: dict[tuple[str, str], assessment.Tally] = {}

    def add(holder: str, div: str, sign: int, **counts: int) -> None:
        if wanted(div):
            t = groups.setdefault((holder, div), assessment.Tally())
            for name, n in counts.items():
                setattr(t, name, getattr(t, name) + sign * (n or 0))

    C, S = SvAssessmentCount, SvCaseSummary
    counted = select(C.holder, C.division, *(func.sum(getattr(C, c)).label(c) for c in assessment.COUNTERS)).where(
        counters.periods_within(C.period, date_from, date_to))
    if agency:
        counted = counted.where(C.holder == agency)
    for row in s.execute(counted.group_by(C.holder, C.division)):
        add(row.holder, row.division, +1, **{c: getattr(row, c) for c in assessment.COUNTERS})

    in_range = [S.registered_day >= date_from.isoformat(), S.registered_day <= date_to.isoformat()]
    mine = [S.holder == agency] if agency else []
    breached = {name: func.sum(when((and_(getattr(S, f"{name}_result").is_(None), getattr(S, f"{name}_due") < today),
                                      1), else_=0)).label(name) for name in ledger.SUPERVISED_CLOCKS}
    for row in s.execute(select(S.holder, S.division, *breached.values())
                         .where(S.running_due < today, *in_range, S.last_event_at <= cutoff, *mine)
                         .group_by(S.holder, S.division)):
        add(row.holder, row.division, +1, acceptance_ended=row.acceptance_notice, handling_ended=row.handling,
            **{f"breached_{name}": getattr(row, name) for name in ledger.SUPERVISED_CLOCKS})

    # cases with an event after the evaluation moment: out of the counters, in as their events say by then
    case_ids = [] if with_cases else None
    for row in s.scalars(select(S).where(S.last_event_at > cutoff, *in_range, *mine).execution_options(yield_per=1000)):
        add(row.holder, row.division, -1, **assessment.settled_tally({c: getattr(row, c) for c in S.__table__.columns.keys()}))
    later = (select(SvEvent.case_id, SvEvent.event_id, SvEvent.type, SvEvent.agency, SvEvent.actor, SvEvent.time,
                    SvEvent.payload, SvEvent.audience)
             .join(S, S.case_id == SvEvent.case_id).where(S.last_event_at > cutoff, *in_range)
             .order_by(SvEvent.case_id, SvEvent.pos).execution_options(yield_per=1000))
    for _, case_events in groupby(s.execute(later), key=lambda r: r.case_id):
        state = assessment.state_as_of(({"id": r.event_id, "case_id": r.case_id, "type": r.type, "agency": r.agency,
                                         "actor": r.actor, "time": r.time, "payload": r.payload,
                                         "audience": r.audience} for r in case_events), as_of)
        if state is None or not assessment.in_population(state, date_from=date_from, date_to=date_to,
                                                         division=division, agency=agency):
            continue
        c = assessment.facts(state, as_of)
        groups.setdefault((c.agency, c.division), assessment.Tally()).add_case(c)
        if case_ids is not None:
            case_ids.append(c.case_id)
    if case_ids is not None:
        case_ids += [cid for cid, d in s.execute(select(S.case_id, S.division).where(*in_range, S.last_event_at <= cutoff,
                                                                                     *mine)) if wanted(d)]
    groups = {key: t for key, t in groups.items() if t.cases}
    report = assessment.report(groups, date_from=date_from, date_to=date_to, as_of=as_of, division=division,
                               agency=agency, names=ctx.name, case_ids=case_ids)
    report["computed_by"] = ctx.agency
    return report
