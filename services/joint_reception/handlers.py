"""Joint-reception handlers: one function per command or event, each inside the caller's unit of work.

At the centre (a petition-bureau node hosting the hall): tickets and the queue, the roster and leader
reception days, joint sessions with their invitations and agreed outcome, hearings, 领导包案.
At every node: the invitations it receives and its answers."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.joint_reception.adapters.orm import (DutyChange, Hearing, InvitationIn, InvitationOut, JointSession,
                                                   KnownCase, LeaderCase, LeaderDayChange, Ticket, TicketCounter)
from services.joint_reception.domain.centre import Centre, Duty, LeaderDay, Window, gaps
from services.joint_reception.domain.sessions import (HEARING_ROLES, Commitment, commitment_problem, hearing_problem,
                                                      minutes_between)
from shared import clock, ledger
from shared.bus import outbox
from shared.bus.envelope import Event
from shared.config import Directory, NodeConfig
from shared.db.base import utcnow
from shared.db.plumbing import OutboxRow, audit
from shared.errors import Conflict, Forbidden, Invalid, NotFound

FLAG_AFTER_TRIES = 3
# Session.info key: the unit of work issued a ticket or learnt a case, so a ticket may be ready to announce
# (the dispatcher is woken when it commits)
TICKETS_WAITING = "lianfang_tickets_waiting"


class TicketRaced(Exception):
    """A ticket changed between reading and claiming it; the unit is rolled back and retried."""


@dataclass
class CentreContext:
    cfg: NodeConfig
    directory: Directory
    centre: Centre | None  # None: this node hosts no centre (it still has windows and receives invitations)

    @property
    def agency(self) -> str:
        return self.cfg.agency

    def require_centre(self) -> Centre:
        if self.centre is None:
            raise NotFound(f"本节点（{self.cfg.name}）未设联合接访中心 (this node hosts no joint reception centre)")
        return self.centre

    def agency_name(self, agency: str | None) -> str | None:
        entry = self.directory.get(agency) if agency else None
        return entry.name if entry else agency


def now() -> datetime:
    return clock.now()


def today() -> date:
    return ledger.local_date(clock.now())


def aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored instant is UTC."""
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def _stage(s: Session, ctx: CentreContext, case_id: str, type_: str, payload: dict, audience, actor: str) -> Event:
    return outbox.stage(s, Event(case_id=case_id, type=type_, agency=ctx.agency, actor=actor, payload=payload,
                                 audience=sorted(audience)))


def _known_case(s: Session, case_id: str) -> KnownCase:
    kc = s.get(KnownCase, case_id)
    if kc is None:
        raise NotFound(f"案件 {case_id} 不存在或尚未同步到本中心 (case unknown here, or not yet on the ledger)")
    return kc


def _audience(kc: KnownCase, *extra: str) -> list[str]:
    """Who shares the case once these agencies join it — never the body reported on (检举控告)."""
    return sorted((set(kc.audience) | set(extra)) - {kc.reported_agency})


# --- the ledger, as the centre sees it --------------------------------------------------------------

def on_event(s: Session, ctx: CentreContext, ev: Event) -> list[str] | None:
    """Keep the audience of every case the centre's node shares; take invitation answers. Idempotent by
    construction (audiences only grow, the first answer counts), and writes nothing for an event that
    changes nothing, so the centre keeps up with the whole ledger cheaply. Returns the case's audience as
    stored, None for a case the centre does not share."""
    kc = s.get(KnownCase, ev.case_id)
    if kc is None and ctx.agency not in ev.audience:
        return None
    if kc is None:
        kc = KnownCase(case_id=ev.case_id, audience=[], registered=False)
        s.add(kc)
        # A ticket issued before the centre knew the case can now be announced: wake the dispatcher for
        # every case learnt, not only when this unit sees such a ticket. On PostgreSQL the ticket may
        # commit while this unit runs, unseen by it, and its own wake-up find the case not yet committed:
        # neither round announced it, and the ticket's events waited for the idle poll.
        s.info[TICKETS_WAITING] = True
    if not set(ev.audience) <= set(kc.audience):
        kc.audience = sorted(set(kc.audience) | set(ev.audience))
    if ev.type == ledger.REGISTERED:
        p = ev.payload
        kc.title, kc.category, kc.division = p["title"], p.get("category"), p["division"]
        kc.reported_agency, kc.registered = p.get("reported_agency"), True
    elif ev.type == ledger.JOINT_INVITATION_ANSWERED:
        record_answer(s, ev.payload["session_id"], ev.agency, bool(ev.payload["accepted"]), ev.payload.get("reason"),
                      datetime.fromisoformat(ev.time))
    return list(kc.audience)


# --- 一厅式接待: tickets and the queue ---------------------------------------------------------------

def choose_window(s: Session, ctx: CentreContext, topic: str) -> Window:
    """The window for a topic; of several, the one with the fewest visitors waiting now."""
    centre = ctx.require_centre()
    if topic not in centre.topics:
        raise Invalid(f"topic: 未知事项 unknown topic {topic!r}; 可选 one of {'、'.join(centre.topics)}", "topic")
    candidates = [w for w in centre.windows_for(topic) if ctx.directory.get(w.agency) is not None]
    if not candidates:
        raise Conflict(f"事项“{topic}”的窗口机构暂不在联盟中，请到综合窗口咨询 (no staffed window for this topic)", "topic")
    day = today().isoformat()
    waiting = dict(s.execute(select(Ticket.window_id, func.count()).where(Ticket.day == day, Ticket.status == "waiting")
                             .group_by(Ticket.window_id)).all())
    return min(candidates, key=lambda w: (waiting.get(w.id, 0), candidates.index(w)))


def _next_number(s: Session, day: str, prefix: str) -> str:
    """The window's next number of the day; the counter row is locked, so two desks never share one."""
    counter = s.get(TicketCounter, (day, prefix), with_for_update=True)
    if counter is None:
        try:
            with s.begin_nested():  # the day's first ticket at this window: another desk may insert it too
                s.add(TicketCounter(day=day, prefix=prefix, last=0))
        except IntegrityError:
            pass
        counter = s.get(TicketCounter, (day, prefix), with_for_update=True, populate_existing=True)
    counter.last += 1
    return f"{prefix}{counter.last:03d}"


def ticket_for_key(s: Session, idempotency_key: str) -> Ticket | None:
    return s.scalars(select(Ticket).where(Ticket.idempotency_key == idempotency_key)).first()


def issue_ticket(s: Session, ctx: CentreContext, *, ticket_id: str, idempotency_key: str | None, topic: str,
                 case_id: str, persons: int, actor: str) -> Ticket:
    """取号: the visit is registered (one case, by intake); the ticket takes it to its window's queue.
    Its case.reception_ticketed event follows once the centre has seen the registration on the ledger."""
    if idempotency_key and (prior := ticket_for_key(s, idempotency_key)) is not None:
        return prior
    centre = ctx.require_centre()
    window = choose_window(s, ctx, topic)
    day = today().isoformat()
    t = Ticket(id=ticket_id, idempotency_key=idempotency_key, day=day, number=_next_number(s, day, window.prefix),
               topic=topic, category=centre.category_of(topic), window_id=window.id, window_agency=window.agency,
               case_id=case_id, persons=persons, collective=persons >= 5, status="waiting", issued_by=actor,
               issued_at=now(), announced=False)
    s.add(t)
    s.info[TICKETS_WAITING] = True
    audit(s, agency=ctx.agency, actor=actor, action="reception.ticket", object_id=case_id,
          detail=f"{t.number} → {window.id}")
    return t


def announce_tickets(s: Session, ctx: CentreContext) -> int:
    """Stage case.reception_ticketed (and .served) for tickets whose case the centre has seen on the
    ledger, so the ticket's events always follow the case's registration in the stream."""
    rows = s.execute(select(Ticket, KnownCase).join(KnownCase, KnownCase.case_id == Ticket.case_id)
                     .where(Ticket.announced.is_(False)).order_by(Ticket.issued_at).limit(100)).all()
    for t, kc in rows:
        # Claim the ticket as it was read: a window serving it meanwhile makes this claim fail, the whole
        # unit rolls back and the next round announces both events (else .served would be lost).
        claimed = s.execute(update(Ticket).where(Ticket.id == t.id, Ticket.announced.is_(False),
                                                 Ticket.status == t.status).values(announced=True))
        if claimed.rowcount != 1:
            raise TicketRaced(t.id)
        window = ctx.require_centre().window(t.window_id)
        kc.audience = _audience(kc, ctx.agency, t.window_agency)
        _stage(s, ctx, t.case_id, ledger.RECEPTION_TICKETED,
               {"ticket_id": t.id, "number": t.number, "topic": t.topic, "window": t.window_id,
                "window_name": window.name if window else t.window_id, "window_agency": t.window_agency,
                "persons": t.persons, "collective": t.collective, "issued_at": aware(t.issued_at).isoformat()},
               kc.audience, t.issued_by)
        if t.status == "served":
            _stage_served(s, ctx, t, kc.audience)
    return len(rows)


def _stage_served(s: Session, ctx: CentreContext, t: Ticket, audience) -> None:
    _stage(s, ctx, t.case_id, ledger.RECEPTION_SERVED,
           {"ticket_id": t.id, "number": t.number, "window": t.window_id, "window_agency": t.window_agency,
            "served_by": t.served_by, "waited_minutes": waited_minutes(t, now())}, audience, t.served_by or "window")


def _ticket(s: Session, ctx: CentreContext, ticket_id: str, agency: str | None) -> Ticket:
    ctx.require_centre()
    t = s.get(Ticket, ticket_id)
    if t is None:
        raise NotFound(f"号票 {ticket_id} 不存在 (no such ticket)")
    if agency is not None and agency not in (t.window_agency, ctx.agency):
        raise Forbidden("该号票不属于本机构窗口 (the ticket is not at this agency's window)")
    return t


def call_ticket(s: Session, ctx: CentreContext, ticket_id: str, actor: str, agency: str | None = None) -> Ticket:
    """叫号: the window calls the visitor."""
    t = _ticket(s, ctx, ticket_id, agency)
    if t.status != "waiting":
        raise Conflict(f"号票 {t.number} 已{'叫号' if t.status == 'called' else '接待完毕'} (ticket already {t.status})")
    t.status, t.called_at = "called", now()
    return t


def call_next(s: Session, ctx: CentreContext, window_id: str, actor: str, agency: str | None = None) -> Ticket:
    window = ctx.require_centre().window(window_id)
    if window is None:
        raise NotFound(f"窗口 {window_id} 不存在 (no such window)")
    if agency is not None and agency not in (window.agency, ctx.agency):
        raise Forbidden("不是本机构的窗口 (not this agency's window)")
    t = s.scalars(select(Ticket).where(Ticket.window_id == window_id, Ticket.day == today().isoformat(),
                                       Ticket.status == "waiting").order_by(Ticket.issued_at).limit(1)).first()
    if t is None:
        raise NotFound(f"{window.name}暂无等候的来访人 (nobody waiting)")
    return call_ticket(s, ctx, t.id, actor, agency)


def serve_ticket(s: Session, ctx: CentreContext, ticket_id: str, actor: str, agency: str | None = None) -> Ticket:
    """接待完毕: the window has received the visitor (the case's handling goes on as routed)."""
    t = _ticket(s, ctx, ticket_id, agency)
    at = now()
    for _ in range(3):
        if t.status == "served":
            raise Conflict(f"号票 {t.number} 已接待完毕 (ticket already served)")
        # Serve the ticket as it was read (status and whether it was announced), so a concurrent
        # announcement or serve cannot slip between the read and this write.
        done = s.execute(update(Ticket).where(Ticket.id == t.id, Ticket.status == t.status,
                                              Ticket.announced.is_(t.announced))
                         .values(status="served", served_at=at, served_by=actor,
                                 called_at=func.coalesce(Ticket.called_at, at)))
        s.refresh(t)
        if done.rowcount == 1:
            break
    else:
        raise Conflict(f"号票 {t.number} 正在被处理，请重试 (ticket busy, try again)")
    if t.announced:
        kc = s.get(KnownCase, t.case_id)
        _stage_served(s, ctx, t, kc.audience if kc else [ctx.agency, t.window_agency])
    audit(s, agency=ctx.agency, actor=actor, action="reception.served", object_id=t.case_id, detail=t.number)
    return t


def waited_minutes(t: Ticket, at: datetime) -> int:
    return minutes_between(aware(t.issued_at), aware(t.called_at) or at)


def ticket_json(ctx: CentreContext, t: Ticket, at: datetime, ahead: int | None = None) -> dict:
    window = ctx.centre.window(t.window_id) if ctx.centre else None
    return {"ticket_id": t.id, "number": t.number, "topic": t.topic, "category": t.category, "window_id": t.window_id,
            "window_name": window.name if window else t.window_id, "window_agency": t.window_agency,
            "window_agency_name": ctx.agency_name(t.window_agency), "case_id": t.case_id, "status": t.status,
            "persons": t.persons, "collective": t.collective, "issued_at": aware(t.issued_at).isoformat(),
            "called_at": aware(t.called_at).isoformat() if t.called_at else None,
            "served_at": aware(t.served_at).isoformat() if t.served_at else None,
            "waited_minutes": waited_minutes(t, at), "ahead": ahead}


def queue(s: Session, ctx: CentreContext, windows: list[Window] | None = None) -> list[dict]:
    """The hall's queue of the day per window: who waits (with minutes waited and how many ahead),
    who has been called, how many were served and their average wait."""
    centre = ctx.require_centre()
    at, day = now(), today().isoformat()
    out = []
    for w in windows if windows is not None else centre.windows:
        tickets = list(s.scalars(select(Ticket).where(Ticket.window_id == w.id, Ticket.day == day)
                                 .order_by(Ticket.issued_at)))
        waiting = [t for t in tickets if t.status == "waiting"]
        done = [t for t in tickets if t.status != "waiting"]
        waits = [waited_minutes(t, at) for t in done]
        out.append({"window_id": w.id, "name": w.name, "agency": w.agency, "agency_name": ctx.agency_name(w.agency),
                    "staffed": ctx.directory.get(w.agency) is not None, "prefix": w.prefix, "topics": list(w.topics),
                    "waiting": [ticket_json(ctx, t, at, ahead=i) for i, t in enumerate(waiting)],
                    "called": [ticket_json(ctx, t, at) for t in done if t.status == "called"],
                    "served_today": sum(t.status == "served" for t in done),
                    "avg_wait_minutes": round(sum(waits) / len(waits)) if waits else 0,
                    "longest_wait_minutes": max((waited_minutes(t, at) for t in waiting), default=0)})
    return out


# --- 值班 and 领导接访日 ---------------------------------------------------------------------------------

def roster(s: Session, ctx: CentreContext) -> dict[date, Duty]:
    """The file's roster with the changes made on the screen (a change replaces that day's entry)."""
    out = dict(ctx.require_centre().roster)
    for ch in s.scalars(select(DutyChange)):
        day = date.fromisoformat(ch.day)
        out[day] = Duty(day=day, people=tuple(ch.people), lead=ch.lead)
    return out


def set_duty(s: Session, ctx: CentreContext, day: date, people: list[str], lead: str | None, actor: str) -> Duty:
    """值班 for a day; on a sensitive day fewer than two people are refused, as in the file."""
    centre = ctx.require_centre()
    people = [p.strip() for p in people]
    if problem := centre.duty_problem(day, people):
        raise Invalid(f"people: {problem}", "people")
    ch = s.get(DutyChange, day.isoformat())
    if ch is None:
        ch = DutyChange(day=day.isoformat(), people=people, lead=lead, changed_by=actor)
        s.add(ch)
    ch.people, ch.lead, ch.changed_by, ch.changed_at = people, lead, actor, utcnow()
    audit(s, agency=ctx.agency, actor=actor, action="centre.roster", object_id=day.isoformat(), detail="、".join(people))
    return Duty(day=day, people=tuple(people), lead=lead)


def roster_json(ctx: CentreContext, days: dict[date, Duty], start: date, end: date) -> list[dict]:
    centre = ctx.require_centre()
    out = []
    d = start
    while d <= end:
        duty, period = days.get(d), centre.sensitive_period(d)
        if duty or period:
            out.append({"date": d.isoformat(), "people": list(duty.people) if duty else [],
                        "lead": duty.lead if duty else None, "sensitive": period is not None,
                        "period": period.name if period else None,
                        "two_person_required": period is not None,
                        "ok": duty is not None and centre.duty_problem(d, duty.people) is None})
        d += timedelta(days=1)
    return out


def leader_days(s: Session, ctx: CentreContext) -> dict[date, LeaderDay]:
    out = dict(ctx.require_centre().leader_days)
    for ch in s.scalars(select(LeaderDayChange)):
        day = date.fromisoformat(ch.day)
        if day in out:
            out[day] = LeaderDay(day=day, leader=ch.leader, title=ch.title, topics=out[day].topics)
    return out


def assign_leader(s: Session, ctx: CentreContext, day: date, leader: str, title: str | None, actor: str) -> LeaderDay:
    """Fill a leader reception day (a gap until then)."""
    days = leader_days(s, ctx)
    if day not in days:
        raise NotFound(f"{day.isoformat()} 不是领导接访日 (not a configured leader reception day)")
    ch = s.get(LeaderDayChange, day.isoformat())
    if ch is None:
        ch = LeaderDayChange(day=day.isoformat(), leader=leader, title=title, changed_by=actor)
        s.add(ch)
    ch.leader, ch.title, ch.changed_by, ch.changed_at = leader, title, actor, utcnow()
    audit(s, agency=ctx.agency, actor=actor, action="centre.leader_day", object_id=day.isoformat(), detail=leader)
    return LeaderDay(day=day, leader=leader, title=title, topics=days[day].topics)


def leader_day_json(ld: LeaderDay, taken: list[LeaderCase] = ()) -> dict:
    return {"date": ld.day.isoformat(), "leader": ld.leader, "title": ld.title, "topics": list(ld.topics),
            "assigned": bool(ld.leader),
            "cases": [{"case_id": c.case_id, "taken_by": c.taken_by, "taken_at": aware(c.taken_at).isoformat()}
                      for c in taken]}


def current_gaps(s: Session, ctx: CentreContext) -> list[dict]:
    return gaps(ctx.require_centre(), today(), roster(s, ctx), leader_days(s, ctx),
                {n.agency for n in ctx.directory.nodes})


def take_case(s: Session, ctx: CentreContext, day: date, case_id: str, actor: str) -> LeaderCase:
    """领导包案 at reception: the leader receiving on this reception day takes the case on
    (case.leader_assigned, payload {leader, by}: the same event the supervision service records)."""
    ld = leader_days(s, ctx).get(day)
    if ld is None:
        raise NotFound(f"{day.isoformat()} 不是领导接访日 (not a leader reception day)")
    if day != today():
        raise Conflict(f"只能在领导接访日当天接访包案（今天是 {today().isoformat()}） (only on the reception day itself)")
    if not ld.leader:
        raise Conflict(f"{day.isoformat()} 尚未安排接访领导 (no leader assigned to this day)")
    kc = _known_case(s, case_id)
    if (prior := s.get(LeaderCase, case_id)) is not None:
        raise Conflict(f"该案件已由{prior.leader}包案 (already taken by {prior.leader})")
    taken = LeaderCase(case_id=case_id, day=day.isoformat(), leader=ld.leader, title=ld.title, taken_by=actor,
                       taken_at=now())
    s.add(taken)
    _stage(s, ctx, case_id, ledger.LEADER_ASSIGNED,
           {"leader": ld.leader, "by": actor, "title": ld.title, "day": day.isoformat(), "centre": ctx.agency,
            "source": "领导接访日"}, _audience(kc, ctx.agency), actor)
    audit(s, agency=ctx.agency, actor=actor, action="centre.leader_take", object_id=case_id, detail=ld.leader)
    return taken


# --- 联合调处: sessions, invitations, outcome ----------------------------------------------------------

def open_session(s: Session, ctx: CentreContext, *, case_id: str, agencies: list[str], agenda: str,
                 scheduled_at: datetime | None, place: str | None, actor: str) -> JointSession:
    """Open a joint session on a case and invite the agencies; the invitations are delivered over gRPC
    once the session's event is on the ledger (each invited agency shares the case from then on)."""
    centre = ctx.require_centre()
    kc = _known_case(s, case_id)
    invited = list(dict.fromkeys(a.strip() for a in agencies))
    if not invited:
        raise Invalid("agencies: 至少邀请一个机构 (invite at least one agency)", "agencies")
    for i, a in enumerate(invited):
        if ctx.directory.get(a) is None:
            raise Invalid(f"agencies[{i}]: 未知机构 unknown agency {a}", "agencies")
        if a == ctx.agency:
            raise Invalid(f"agencies[{i}]: 中心所在机构无需邀请 (the centre's own agency takes part anyway)", "agencies")
        if a == kc.reported_agency:
            raise Invalid(f"agencies[{i}]: 被检举控告的机构不得参与调处 (the body reported on is never invited)",
                          "agencies")
    at = (scheduled_at or now()).astimezone(timezone.utc)
    session_id = uuid.uuid4().hex
    audience = _audience(kc, ctx.agency, *invited)
    event = _stage(s, ctx, case_id, ledger.JOINT_SESSION_OPENED,
                   {"session_id": session_id, "centre_name": centre.name, "agenda": agenda,
                    "scheduled_at": at.isoformat(), "place": place or centre.place, "invited": invited}, audience, actor)
    kc.audience = audience
    sess = JointSession(id=session_id, case_id=case_id, title=kc.title or "", category=kc.category,
                        division=kc.division, agenda=agenda, place=place or centre.place, scheduled_at=at,
                        day=ledger.local_date(at).isoformat(), status="inviting", invited=invited, audience=audience,
                        opened_by=actor, opened_at=now(), event_id=event.id, outcome=None)
    s.add(sess)
    for a in invited:
        s.add(InvitationOut(session_id=session_id, agency=a, delivery="pending", answer="pending", tries=0,
                            next_try_at=utcnow()))
    audit(s, agency=ctx.agency, actor=actor, action="centre.session_open", object_id=case_id,
          detail=f"{session_id}: {', '.join(invited)}")
    return sess


def due_invitations(s: Session) -> list[tuple[InvitationOut, JointSession]]:
    """Invitations whose session event is already on the bus (no answer can overtake it) and due a try."""
    rows = s.execute(select(InvitationOut, JointSession)
                     .join(JointSession, JointSession.id == InvitationOut.session_id)
                     .join(OutboxRow, OutboxRow.event_id == JointSession.event_id)
                     .where(InvitationOut.delivery == "pending", InvitationOut.next_try_at <= utcnow(),
                            OutboxRow.published_at.is_not(None))
                     .order_by(InvitationOut.next_try_at).limit(100))
    return [(i, sess) for i, sess in rows]


def invitation_delivered(s: Session, session_id: str, agency: str, answer: str, reason: str | None) -> None:
    inv = s.get(InvitationOut, (session_id, agency))
    inv.delivery, inv.last_error = "delivered", None
    if answer in ("accepted", "declined"):
        record_answer(s, session_id, agency, answer == "accepted", reason, now())


def invitation_failed(s: Session, session_id: str, agency: str, error: str) -> None:
    """The invited node is down or slow: try again later (back-off up to 10 s), never drop it."""
    inv = s.get(InvitationOut, (session_id, agency))
    inv.tries += 1
    inv.last_error = error[:500]
    inv.next_try_at = utcnow() + timedelta(seconds=min(0.5 * 2 ** inv.tries, 10))


def record_answer(s: Session, session_id: str, agency: str, accepted: bool, reason: str | None, at: datetime) -> None:
    """The first answer of an invited agency counts (it arrives in the reply and as an event)."""
    inv = s.get(InvitationOut, (session_id, agency))
    if inv is None or inv.answer != "pending":
        return
    inv.answer, inv.reason, inv.answered_at = ("accepted" if accepted else "declined"), reason or None, at
    inv.delivery = "delivered"
    sess = s.get(JointSession, session_id)
    s.flush()
    answers = s.scalars(select(InvitationOut.answer).where(InvitationOut.session_id == session_id)).all()
    if sess.status == "inviting" and all(a != "pending" for a in answers):
        sess.status = "ready"


def record_outcome(s: Session, ctx: CentreContext, session_id: str, *, summary: str, commitments: list[Commitment],
                   notice: dict | None, actor: str) -> JointSession:
    """The agreed outcome: who does what by when (each commitment its own case.commitment_made with its
    due date, for supervision to track) and the one-time notice (一次性告知) of what the petitioner
    must bring. Lands on the case for every agency invited to the session."""
    sess = session(s, ctx, session_id)
    if sess.status == "concluded":
        raise Conflict("本次联合调处已形成结果 (the outcome is already recorded)")
    invitations = list(s.scalars(select(InvitationOut).where(InvitationOut.session_id == session_id)))
    answers = {i.agency: i.answer for i in invitations}
    accepted = [a for a, ans in answers.items() if ans == "accepted"]
    if not accepted:
        raise Conflict("尚无受邀机构接受邀请，无法形成调处结果 (no invited agency has accepted yet)")
    if not commitments:
        raise Invalid("commitments: 至少一项承诺：谁、做什么、何时完成 (at least one commitment)", "commitments")
    for i, c in enumerate(commitments):
        if problem := commitment_problem(c, answers, ctx.agency, today()):
            raise Invalid(f"commitments[{i}]: {problem}", f"commitments.{i}")
    kc = _known_case(s, sess.case_id)
    audience = sorted((set(sess.audience) | set(kc.audience)) - {kc.reported_agency})
    participants = [ctx.agency, *accepted]
    declined = [{"agency": i.agency, "agency_name": ctx.agency_name(i.agency), "reason": i.reason}
                for i in invitations if i.answer == "declined"]
    unanswered = [i.agency for i in invitations if i.answer == "pending"]
    _stage(s, ctx, sess.case_id, ledger.JOINT_OUTCOME_RECORDED,
           {"session_id": session_id, "summary": summary, "participants": participants, "declined": declined,
            "unanswered": unanswered, "notice": notice}, audience, actor)
    made = []
    for i, c in enumerate(commitments, 1):
        item = {"commitment_id": f"{session_id}-{i}", "session_id": session_id, "agency": c.agency,
                "agency_name": ctx.agency_name(c.agency), "action": c.action, "due": c.due.isoformat(), "by": actor}
        _stage(s, ctx, sess.case_id, ledger.COMMITMENT_MADE, item, audience, actor)
        made.append(item)
    sess.status = "concluded"
    sess.outcome = {"summary": summary, "participants": participants, "declined": declined, "unanswered": unanswered,
                    "commitments": made, "notice": notice, "recorded_by": actor, "recorded_at": now().isoformat()}
    audit(s, agency=ctx.agency, actor=actor, action="centre.session_outcome", object_id=sess.case_id,
          detail=f"{session_id}: {len(made)} commitment(s)")
    return sess


def session(s: Session, ctx: CentreContext, session_id: str) -> JointSession:
    ctx.require_centre()
    sess = s.get(JointSession, session_id)
    if sess is None:
        raise NotFound(f"联合调处 {session_id} 不存在 (no such session)")
    return sess


def session_json(s: Session, ctx: CentreContext, sess: JointSession) -> dict:
    invitations = s.scalars(select(InvitationOut).where(InvitationOut.session_id == sess.id)
                            .order_by(InvitationOut.agency))
    return {"session_id": sess.id, "case_id": sess.case_id, "title": sess.title, "category": sess.category,
            "agenda": sess.agenda, "place": sess.place, "scheduled_at": aware(sess.scheduled_at).isoformat(),
            "date": sess.day, "status": sess.status, "opened_by": sess.opened_by,
            "invitations": [{"agency": i.agency, "agency_name": ctx.agency_name(i.agency), "answer": i.answer,
                             "reason": i.reason, "delivered": i.delivery == "delivered", "tries": i.tries,
                             "last_error": i.last_error, "flagged": i.delivery != "delivered" and i.tries >= FLAG_AFTER_TRIES,
                             "answered_at": aware(i.answered_at).isoformat() if i.answered_at else None}
                            for i in invitations],
            "outcome": sess.outcome}


# --- at an invited node ------------------------------------------------------------------------------

def receive_invitation(s: Session, ctx: CentreContext, req) -> InvitationIn:
    """An invitation arrives. Idempotent per session. Under auto_sign_for it is accepted at once."""
    existing = s.get(InvitationIn, req.session_id)
    if existing is not None:
        return existing
    inv = InvitationIn(session_id=req.session_id, case_id=req.case_id, centre=req.centre, centre_name=req.centre_name,
                       title=req.title, category=req.category, division=req.division, agenda=req.agenda,
                       scheduled_at=req.scheduled_at, place=req.place, invited=list(req.invited),
                       audience=sorted(set(req.audience) | {ctx.agency}), status="pending", received_at=utcnow())
    s.add(inv)
    audit(s, agency=ctx.agency, actor=req.centre, action="invitation.receive", object_id=req.case_id,
          detail=req.session_id)
    if ctx.cfg.auto_sign_for:
        answer_invitation(s, ctx, inv, accepted=True, reason=None, actor="auto")
    return inv


def answer_invitation(s: Session, ctx: CentreContext, inv: InvitationIn, *, accepted: bool, reason: str | None,
                      actor: str) -> InvitationIn:
    """Accept, or decline with a reason; the answer goes on the ledger to everyone sharing the case."""
    if inv.status != "pending":
        raise Conflict(f"该邀请已{'接受' if inv.status == 'accepted' else '拒绝'} (already answered)")
    if not accepted and not (reason or "").strip():
        raise Invalid("reason: 拒绝参加须说明理由 (a reason is required to decline)", "reason")
    inv.status, inv.reason = ("accepted" if accepted else "declined"), (reason or "").strip() or None
    inv.answered_by, inv.answered_at = actor, utcnow()
    _stage(s, ctx, inv.case_id, ledger.JOINT_INVITATION_ANSWERED,
           {"session_id": inv.session_id, "accepted": accepted, "reason": inv.reason, "centre": inv.centre},
           inv.audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action=f"invitation.{inv.status}", object_id=inv.case_id,
          detail=inv.reason or "")
    return inv


def invitation(s: Session, session_id: str) -> InvitationIn:
    inv = s.get(InvitationIn, session_id)
    if inv is None:
        raise NotFound(f"本机构没有联合调处 {session_id} 的邀请 (no such invitation)")
    return inv


def invitation_json(inv: InvitationIn) -> dict:
    return {"session_id": inv.session_id, "case_id": inv.case_id, "centre": inv.centre, "centre_name": inv.centre_name,
            "title": inv.title, "category": inv.category, "agenda": inv.agenda, "scheduled_at": inv.scheduled_at,
            "place": inv.place, "invited": inv.invited, "status": inv.status, "reason": inv.reason,
            "received_at": aware(inv.received_at).isoformat(), "answered_by": inv.answered_by}


# --- 听证 ---------------------------------------------------------------------------------------------

def schedule_hearing(s: Session, ctx: CentreContext, *, case_id: str, subject: str, scheduled_at: datetime,
                     place: str | None, participants: list[dict], actor: str) -> Hearing:
    centre = ctx.require_centre()
    kc = _known_case(s, case_id)
    if problem := hearing_problem(participants, {n.agency for n in ctx.directory.nodes}):
        raise Invalid(f"participants: {problem}", "participants")
    listed = []
    for i, p in enumerate(participants, 1):
        entry = {"id": f"p{i}", "role": p["role"], "role_label": HEARING_ROLES[p["role"]],
                 "name": None if p["role"] == "petitioner" else p.get("name"), "agency": p.get("agency")}
        if entry["agency"]:
            entry["agency_name"] = ctx.agency_name(entry["agency"])
        listed.append(entry)
    bodies = [p["agency"] for p in listed if p["agency"] and p["agency"] != kc.reported_agency]
    audience = _audience(kc, ctx.agency, *bodies)
    at = scheduled_at.astimezone(timezone.utc)
    h = Hearing(id=uuid.uuid4().hex, case_id=case_id, subject=subject, place=place or centre.place, scheduled_at=at,
                day=ledger.local_date(at).isoformat(), participants=listed, audience=audience, status="scheduled",
                scheduled_by=actor)
    s.add(h)
    kc.audience = audience
    _stage(s, ctx, case_id, ledger.HEARING_SCHEDULED,
           {"hearing_id": h.id, "subject": subject, "scheduled_at": at.isoformat(), "place": h.place,
            "participants": listed}, audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="centre.hearing_schedule", object_id=case_id, detail=h.id)
    return h


def record_hearing(s: Session, ctx: CentreContext, hearing_id: str, *, attended: list[str], conclusion: str,
                   actor: str) -> Hearing:
    h = hearing(s, ctx, hearing_id)
    if h.status == "held":
        raise Conflict("该听证已记录结论 (the hearing is already recorded)")
    ids = {p["id"] for p in h.participants}
    unknown = [a for a in attended if a not in ids]
    if unknown:
        raise Invalid(f"attended: 未列入听证的参加人 unknown participant(s) {', '.join(unknown)}", "attended")
    chair = next(p["id"] for p in h.participants if p["role"] == "chair")
    if chair not in attended:
        raise Invalid("attended: 主持人未出席，听证不能举行 (the chair must attend)", "attended")
    attendance = [{**p, "present": p["id"] in attended} for p in h.participants]
    h.status, h.attendance, h.conclusion, h.held_at = "held", attendance, conclusion, now()
    kc = _known_case(s, h.case_id)
    audience = sorted((set(h.audience) | set(kc.audience)) - {kc.reported_agency})
    _stage(s, ctx, h.case_id, ledger.HEARING_HELD,
           {"hearing_id": h.id, "attendance": attendance, "conclusion": conclusion}, audience, actor)
    audit(s, agency=ctx.agency, actor=actor, action="centre.hearing_record", object_id=h.case_id, detail=h.id)
    return h


def hearing(s: Session, ctx: CentreContext, hearing_id: str) -> Hearing:
    ctx.require_centre()
    h = s.get(Hearing, hearing_id)
    if h is None:
        raise NotFound(f"听证 {hearing_id} 不存在 (no such hearing)")
    return h


def hearing_json(h: Hearing) -> dict:
    return {"hearing_id": h.id, "case_id": h.case_id, "subject": h.subject, "place": h.place,
            "scheduled_at": aware(h.scheduled_at).isoformat(), "date": h.day, "status": h.status,
            "participants": h.participants, "attendance": h.attendance, "conclusion": h.conclusion,
            "held_at": aware(h.held_at).isoformat() if h.held_at else None}


# --- what one agency's window sees --------------------------------------------------------------------

def window_view(s: Session, ctx: CentreContext, agency: str) -> dict:
    """An agency's share of the hall: its windows' queues, its sessions and hearings from today on,
    and the leader reception days."""
    centre = ctx.require_centre()
    windows = centre.windows_of(agency)
    if not windows:
        raise NotFound(f"{ctx.agency_name(agency)} 在{centre.name}没有窗口 (no window for this agency)")
    day = today().isoformat()
    sessions = []
    for inv, sess in s.execute(select(InvitationOut, JointSession)
                               .join(JointSession, JointSession.id == InvitationOut.session_id)
                               .where(InvitationOut.agency == agency, JointSession.day >= day)
                               .order_by(JointSession.scheduled_at)):
        sessions.append({"session_id": sess.id, "case_id": sess.case_id, "title": sess.title, "agenda": sess.agenda,
                         "scheduled_at": aware(sess.scheduled_at).isoformat(), "place": sess.place,
                         "status": sess.status, "answer": inv.answer, "reason": inv.reason or ""})
    hearings = [hearing_json(h) for h in s.scalars(select(Hearing).where(Hearing.day >= day)
                                                    .order_by(Hearing.scheduled_at))
                if any(p.get("agency") == agency for p in h.participants)]
    days = leader_days(s, ctx)
    return {"centre": ctx.agency, "centre_name": centre.name, "date": day, "windows": queue(s, ctx, windows),
            "sessions": sessions, "hearings": hearings,
            "leader_days": [leader_day_json(days[d]) for d in sorted(days) if d >= today()]}
