"""Joint-reception HTTP API. Translates only.

At the centre's node (`/api/v1/centre/...`): JSON for the hall's screen — queue with waiting times,
windows, sessions and hearings of the day, roster, leader reception days, gaps — and the desk's
commands (取号, 叫号, 接待完毕, 联合调处, 听证, 值班, 领导接访). At every node: its window view of the
centres it has windows in (`/api/v1/window`) and the invitations it received (`/api/v1/invitations`)."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from services.joint_reception import handlers
from services.joint_reception.adapters.intake_client import register_visit
from services.joint_reception.adapters.orm import Hearing, InvitationIn, JointSession, LeaderCase
from services.joint_reception.domain.sessions import LONG_WAIT_MINUTES, Commitment
from shared import rpc
from shared.errors import Forbidden, Invalid
from shared.pb import joint_reception_pb2 as pb
from shared.pb import joint_reception_pb2_grpc as pb_grpc
from shared.web import Principal, caller

TICKET_ROLES = {"clerk", "handler", "admin"}
DESK_ROLES = {"clerk", "handler", "leader", "admin"}
ROSTER_ROLES = {"supervisor", "leader", "admin"}
ERRORS = {401: {"description": "未登录或令牌无效"}, 403: {"description": "无此权限"},
          404: {"description": "本节点未设联合接访中心，或对象不存在"}, 409: {"description": "状态冲突"},
          422: {"description": "输入无效: error.field names the field"}}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _with_offset(v: datetime | None) -> datetime | None:
    if v is not None and v.tzinfo is None:
        raise ValueError("须带时区，如 2026-12-01T09:30:00+08:00 (include the UTC offset)")
    return v


class VisitIn(BaseModel):
    """The visit as intake registers it (channel 来访 and the topic's category are set by the centre).
    Everything else is intake's PetitionIn and validated there (集体访: at most 5 representatives)."""
    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    title: str
    content: str
    persons: int = Field(default=1, ge=1)
    division: str | None = Field(default=None, description="default: the centre's division")


class TicketIn(_In):
    topic: str = Field(description="事项, one of the centre's topics (GET /api/v1/centre/windows)")
    petition: VisitIn


class CommitmentIn(_In):
    agency: str = Field(description="承办机构 agency id: the centre or an agency that accepted")
    action: str = Field(min_length=2, max_length=500, description="做什么")
    due: date = Field(description="何时完成 (YYYY-MM-DD)")


class NoticeIn(_In):
    items: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, description="一次性告知: every document or step the petitioner must bring")
    note: str | None = Field(default=None, max_length=1000)


class SessionIn(_In):
    case_id: str
    agencies: list[str] = Field(min_length=1, description="agency ids to invite")
    agenda: str = Field(min_length=2, max_length=1000, description="议题")
    scheduled_at: datetime | None = Field(default=None, description="ISO 8601 with offset; default now")
    place: str | None = Field(default=None, max_length=200)

    _offset = field_validator("scheduled_at")(classmethod(lambda cls, v: _with_offset(v)))


class OutcomeIn(_In):
    summary: str = Field(min_length=2, max_length=5000, description="调处意见")
    commitments: list[CommitmentIn] = Field(min_length=1)
    notice: NoticeIn | None = None


class ParticipantIn(_In):
    role: Literal["chair", "panel", "petitioner", "agency", "observer"]
    name: str | None = Field(default=None, max_length=50)
    agency: str | None = None


class HearingIn(_In):
    case_id: str
    subject: str = Field(min_length=2, max_length=500)
    scheduled_at: datetime
    place: str | None = Field(default=None, max_length=200)
    participants: list[ParticipantIn] = Field(min_length=1)

    _offset = field_validator("scheduled_at")(classmethod(lambda cls, v: _with_offset(v)))


class HearingRecordIn(_In):
    attended: list[str] = Field(description="participant ids present (p1, p2 …)")
    conclusion: str = Field(min_length=2, max_length=5000)


class DutyIn(_In):
    people: list[str] = Field(description="值班人员")
    lead: str | None = Field(default=None, max_length=60, description="带班领导")


class LeaderIn(_In):
    leader: str = Field(min_length=1, max_length=60)
    title: str | None = Field(default=None, max_length=60)


class TakeIn(_In):
    case_id: str


class DeclineIn(_In):
    reason: str = Field(min_length=2, max_length=500, description="拒绝理由")


def build_router(rt, ctx: handlers.CentreContext) -> APIRouter:
    router = APIRouter()

    User = caller(rt.cfg)

    def may(who: Principal, roles: set[str], what: str) -> None:
        if who.role not in roles:
            raise Forbidden(f"无{what}权限 (role {who.role} may not do this)")

    def read(fn):
        def run():
            with rt.db.read() as s:
                return fn(s)
        return asyncio.to_thread(run)

    async def write(fn):
        return await rt.db.run_async(fn)

    # --- the centre's screen --------------------------------------------------------------------------

    @router.get("/api/v1/centre", responses=ERRORS, summary="联合接访中心概况 the centre at a glance")
    async def centre_info(who: User):
        centre = ctx.require_centre()
        return {"host": ctx.agency, "name": centre.name, "place": centre.place, "division": centre.division,
                "date": handlers.today().isoformat(), "topics": centre.topics,
                "windows": [{"id": w.id, "name": w.name, "agency": w.agency, "agency_name": ctx.agency_name(w.agency),
                             "prefix": w.prefix, "topics": list(w.topics)} for w in centre.windows]}

    @router.get("/api/v1/centre/windows", responses=ERRORS, summary="窗口 the windows and the topics they receive")
    async def windows(who: User):
        return {"windows": (await centre_info(who))["windows"]}

    @router.get("/api/v1/centre/queue", responses=ERRORS, summary="排队叫号 the queue of the day with waiting times")
    async def queue(who: User):
        ctx.require_centre()
        q = await read(lambda s: handlers.queue(s, ctx))
        return {"date": handlers.today().isoformat(), "windows": q,
                "waiting_total": sum(len(w["waiting"]) for w in q), "long_wait_minutes": LONG_WAIT_MINUTES,
                "long_waits": [t for w in q for t in w["waiting"] if t["waited_minutes"] >= LONG_WAIT_MINUTES]}

    @router.get("/api/v1/centre/sessions", responses=ERRORS, summary="联合调处 sessions of a day (default today)")
    async def sessions(who: User, day: date | None = Query(None, alias="date")):
        ctx.require_centre()
        d = (day or handlers.today()).isoformat()
        return {"date": d, "sessions": await read(lambda s: [handlers.session_json(s, ctx, x) for x in s.scalars(
            select(JointSession).where(JointSession.day == d).order_by(JointSession.scheduled_at))])}

    @router.get("/api/v1/centre/hearings", responses=ERRORS, summary="听证 hearings of a day (default today)")
    async def hearings(who: User, day: date | None = Query(None, alias="date")):
        ctx.require_centre()
        d = (day or handlers.today()).isoformat()
        return {"date": d, "hearings": await read(lambda s: [handlers.hearing_json(h) for h in s.scalars(
            select(Hearing).where(Hearing.day == d).order_by(Hearing.scheduled_at))])}

    @router.get("/api/v1/centre/roster", responses=ERRORS, summary="值班表 duty roster (default: the next 14 days)")
    async def get_roster(who: User, start: date | None = Query(None, alias="from"),
                         end: date | None = Query(None, alias="to")):
        ctx.require_centre()
        start = start or handlers.today()
        end = end or start + timedelta(days=14)
        if end < start or (end - start).days > 366:
            raise Invalid("to: 日期范围无效（最长一年） (invalid range, at most a year)", "to")
        days = await read(lambda s: handlers.roster(s, ctx))
        return {"from": start.isoformat(), "to": end.isoformat(), "roster": handlers.roster_json(ctx, days, start, end)}

    @router.put("/api/v1/centre/roster/{day}", responses=ERRORS,
                summary="安排值班 set the duty for a day (two people on a sensitive day)")
    async def put_roster(day: date, body: DutyIn, who: User):
        may(who, ROSTER_ROLES, "排班")
        duty = await write(lambda s: handlers.set_duty(s, ctx, day, body.people, body.lead, who.user))
        return handlers.roster_json(ctx, {day: duty}, day, day)[0]

    @router.get("/api/v1/centre/leader-days", responses=ERRORS, summary="领导接访日 leader reception days")
    async def get_leader_days(who: User, include_past: bool = False):
        ctx.require_centre()

        def work(s):
            days = handlers.leader_days(s, ctx)
            taken = list(s.scalars(select(LeaderCase).order_by(LeaderCase.taken_at)))
            return [handlers.leader_day_json(days[d], [c for c in taken if c.day == d.isoformat()])
                    for d in sorted(days) if include_past or d >= handlers.today()]
        return {"leader_days": await read(work)}

    @router.put("/api/v1/centre/leader-days/{day}", responses=ERRORS, summary="安排接访领导 assign the leader of a day")
    async def put_leader_day(day: date, body: LeaderIn, who: User):
        may(who, {"leader", "admin"}, "安排接访领导")
        ld = await write(lambda s: handlers.assign_leader(s, ctx, day, body.leader, body.title, who.user))
        return handlers.leader_day_json(ld)

    @router.post("/api/v1/centre/leader-days/{day}/cases", status_code=201, responses=ERRORS,
                 summary="领导包案 the receiving leader takes a case on, on the reception day")
    async def take_case(day: date, body: TakeIn, who: User):
        may(who, {"leader"}, "领导包案")
        taken = await write(lambda s: handlers.take_case(s, ctx, day, body.case_id, who.user))
        return {"case_id": taken.case_id, "leader": taken.leader, "title": taken.title, "date": taken.day,
                "taken_by": taken.taken_by}

    @router.get("/api/v1/centre/gaps", responses=ERRORS,
                summary="缺位 leader days without a leader, sensitive days without duty, unstaffed windows")
    async def get_gaps(who: User):
        ctx.require_centre()
        return {"date": handlers.today().isoformat(), "gaps": await read(lambda s: handlers.current_gaps(s, ctx))}

    @router.get("/api/v1/centre/screen", responses=ERRORS, summary="大厅屏幕 everything the hall's screen shows today")
    async def screen(who: User):
        info = await centre_info(who)
        return {"centre": {k: info[k] for k in ("host", "name", "place", "date")},
                "queue": await queue(who), "sessions": (await sessions(who, None))["sessions"],
                "hearings": (await hearings(who, None))["hearings"],
                "roster": (await get_roster(who, None, handlers.today() + timedelta(days=7)))["roster"],
                "leader_days": (await get_leader_days(who))["leader_days"], "gaps": (await get_gaps(who))["gaps"]}

    # --- 一厅式接待 --------------------------------------------------------------------------------------

    @router.post("/api/v1/centre/tickets", status_code=201, responses=ERRORS,
                 summary="取号 register a walk-in visit (one case, through intake) and queue it at its window")
    async def take_ticket(body: TicketIn, request: Request, who: User,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
        may(who, TICKET_ROLES, "取号登记")
        centre = ctx.require_centre()
        if idempotency_key:
            prior = await read(lambda s: handlers.ticket_for_key(s, idempotency_key))
            ticket_id = prior.id if prior else uuid.uuid5(uuid.NAMESPACE_URL, f"lianfang:{idempotency_key}").hex
        else:
            ticket_id = uuid.uuid4().hex
        await read(lambda s: handlers.choose_window(s, ctx, body.topic))  # unknown topic: refused before intake
        petition = {**body.petition.model_dump(exclude_none=True), "channel": "visit",
                    "category": centre.category_of(body.topic),
                    "division": body.petition.division or centre.division or rt.cfg.division}
        if "intake" not in rt.cfg.services:
            raise Invalid("本节点未运行登记服务 (this node runs no intake)")
        registered = await register_visit(rt.cfg.services["intake"].http, request.headers["authorization"],
                                          f"joint-reception-ticket-{ticket_id}", petition)
        t = await write(lambda s: handlers.ticket_json(ctx, handlers.issue_ticket(
            s, ctx, ticket_id=ticket_id, idempotency_key=idempotency_key, topic=body.topic,
            case_id=registered["case_id"], persons=body.petition.persons, actor=who.user), handlers.now()))
        ahead = await read(lambda s: next((x["ahead"] for w in handlers.queue(s, ctx) for x in w["waiting"]
                                           if x["ticket_id"] == t["ticket_id"]), None))
        return {"ticket": {**t, "ahead": ahead}, "case_id": registered["case_id"],
                "query_code": registered["query_code"], "registration": registered["status"],
                "repeat_of": registered.get("repeat_of")}

    @router.post("/api/v1/centre/tickets/{ticket_id}/call", responses=ERRORS, summary="叫号 call a ticket")
    async def call(ticket_id: str, who: User):
        may(who, DESK_ROLES, "叫号")
        return await write(lambda s: handlers.ticket_json(ctx, handlers.call_ticket(s, ctx, ticket_id, who.user),
                                                          handlers.now()))

    @router.post("/api/v1/centre/windows/{window_id}/next", responses=ERRORS, summary="叫下一位 call the next visitor")
    async def call_next(window_id: str, who: User):
        may(who, DESK_ROLES, "叫号")
        return await write(lambda s: handlers.ticket_json(ctx, handlers.call_next(s, ctx, window_id, who.user),
                                                          handlers.now()))

    @router.post("/api/v1/centre/tickets/{ticket_id}/serve", responses=ERRORS, summary="接待完毕 the visit was received")
    async def serve(ticket_id: str, who: User):
        may(who, DESK_ROLES, "接待")
        return await write(lambda s: handlers.ticket_json(ctx, handlers.serve_ticket(s, ctx, ticket_id, who.user),
                                                          handlers.now()))

    # --- 联合调处 -------------------------------------------------------------------------------------

    @router.post("/api/v1/centre/sessions", status_code=201, responses=ERRORS,
                 summary="联合调处 open a joint session on a case and invite the agencies")
    async def open_session(body: SessionIn, who: User):
        may(who, DESK_ROLES, "组织联合调处")
        return await write(lambda s: handlers.session_json(s, ctx, handlers.open_session(
            s, ctx, case_id=body.case_id, agencies=body.agencies, agenda=body.agenda, scheduled_at=body.scheduled_at,
            place=body.place, actor=who.user)))

    @router.get("/api/v1/centre/sessions/{session_id}", responses=ERRORS, summary="a joint session and its answers")
    async def get_session(session_id: str, who: User):
        return await read(lambda s: handlers.session_json(s, ctx, handlers.session(s, ctx, session_id)))

    @router.post("/api/v1/centre/sessions/{session_id}/outcome", responses=ERRORS,
                 summary="调处结果 the agreed outcome: commitments (who, what, by when) and the one-time notice")
    async def outcome(session_id: str, body: OutcomeIn, who: User):
        may(who, DESK_ROLES, "记录调处结果")
        commitments = [Commitment(agency=c.agency, action=c.action, due=c.due) for c in body.commitments]
        return await write(lambda s: handlers.session_json(s, ctx, handlers.record_outcome(
            s, ctx, session_id, summary=body.summary, commitments=commitments,
            notice=body.notice.model_dump() if body.notice else None, actor=who.user)))

    # --- 听证 -----------------------------------------------------------------------------------------

    @router.post("/api/v1/centre/hearings", status_code=201, responses=ERRORS,
                 summary="听证 schedule a hearing for a case with its participants")
    async def schedule_hearing(body: HearingIn, who: User):
        may(who, DESK_ROLES, "安排听证")
        return await write(lambda s: handlers.hearing_json(handlers.schedule_hearing(
            s, ctx, case_id=body.case_id, subject=body.subject, scheduled_at=body.scheduled_at, place=body.place,
            participants=[p.model_dump() for p in body.participants], actor=who.user)))

    @router.get("/api/v1/centre/hearings/{hearing_id}", responses=ERRORS, summary="one hearing")
    async def get_hearing(hearing_id: str, who: User):
        return await read(lambda s: handlers.hearing_json(handlers.hearing(s, ctx, hearing_id)))

    @router.post("/api/v1/centre/hearings/{hearing_id}/record", responses=ERRORS,
                 summary="听证记录 attendance and conclusion")
    async def record_hearing(hearing_id: str, body: HearingRecordIn, who: User):
        may(who, DESK_ROLES, "记录听证")
        return await write(lambda s: handlers.hearing_json(handlers.record_hearing(
            s, ctx, hearing_id, attended=body.attended, conclusion=body.conclusion, actor=who.user)))

    # --- at every node: its windows, its invitations --------------------------------------------------

    async def _remote(centre: str, call):
        entry = rt.directory.get(centre)
        addr = entry.grpc.get("joint_reception") if entry else None
        if not addr:
            return None
        ch = rt.channels.get(addr)
        return await call(pb_grpc.JointReceptionServiceStub(ch))

    @router.get("/api/v1/window", responses=ERRORS,
                summary="本机构窗口 this agency's windows in the centres of its division and above")
    async def my_windows(who: User):
        out, unreachable = [], []
        for centre in rt.directory.supervising_bureaus(rt.cfg.division):
            if centre == rt.agency:
                if ctx.centre is not None and ctx.centre.windows_of(rt.agency):
                    out.append(await read(lambda s: handlers.window_view(s, ctx, rt.agency)))
                continue
            md = rpc.call_metadata(rt.agency, who.user, who.role)
            try:
                view = await _remote(centre, lambda stub: stub.GetWindow(pb.GetWindowRequest(agency=rt.agency),
                                                                          timeout=rpc.DEFAULT_DEADLINE_S, metadata=md))
            except grpc.aio.AioRpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND:
                    unreachable.append({"centre": centre, "error": e.details() or e.code().name})
                continue
            if view is not None:
                out.append(MessageToDict(view, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True))
        return {"agency": rt.agency, "centres": out, "unreachable": unreachable}

    @router.post("/api/v1/window/centres/{centre}/tickets/{ticket_id}/{action}", responses=ERRORS,
                 summary="窗口叫号/接待完毕 call or serve a ticket routed to this agency's window")
    async def window_ticket(centre: str, ticket_id: str, action: Literal["call", "serve"], who: User):
        may(who, DESK_ROLES, "窗口接待")
        if centre == rt.agency:
            act = handlers.call_ticket if action == "call" else handlers.serve_ticket
            return await write(lambda s: handlers.ticket_json(ctx, act(s, ctx, ticket_id, who.user), handlers.now()))
        req = pb.UpdateTicketRequest(ticket_id=ticket_id, action=pb.UpdateTicketRequest.CALL if action == "call"
                                     else pb.UpdateTicketRequest.SERVE)
        md = rpc.call_metadata(rt.agency, who.user, who.role)
        try:
            reply = await _remote(centre, lambda stub: stub.UpdateTicket(req, timeout=rpc.DEFAULT_DEADLINE_S,
                                                                         metadata=md))
        except grpc.aio.AioRpcError as e:
            status = {grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.PERMISSION_DENIED: 403,
                      grpc.StatusCode.FAILED_PRECONDITION: 409}.get(e.code(), 503)
            return JSONResponse({"error": {"code": e.code().name.lower(), "message": e.details()}}, status_code=status)
        if reply is None:
            raise Invalid(f"centre: {centre} 不是联合接访中心 (not a centre)", "centre")
        return MessageToDict(reply, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)

    @router.get("/api/v1/invitations", responses=ERRORS, summary="联合调处邀请 invitations this agency received")
    async def invitations(who: User, status: str | None = None):
        def work(s):
            q = select(InvitationIn).order_by(InvitationIn.received_at)
            if status:
                q = q.where(InvitationIn.status == status)
            return [handlers.invitation_json(i) for i in s.scalars(q)]
        return {"agency": rt.agency, "invitations": await read(work)}

    @router.post("/api/v1/invitations/{session_id}/accept", responses=ERRORS, summary="接受邀请 take part")
    async def accept(session_id: str, who: User):
        may(who, DESK_ROLES, "答复邀请")
        return await write(lambda s: handlers.invitation_json(handlers.answer_invitation(
            s, ctx, handlers.invitation(s, session_id), accepted=True, reason=None, actor=who.user)))

    @router.post("/api/v1/invitations/{session_id}/decline", responses=ERRORS, summary="拒绝邀请 decline with a reason")
    async def decline(session_id: str, body: DeclineIn, who: User):
        may(who, DESK_ROLES, "答复邀请")
        return await write(lambda s: handlers.invitation_json(handlers.answer_invitation(
            s, ctx, handlers.invitation(s, session_id), accepted=False, reason=body.reason, actor=who.user)))

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return JSONResponse({"ok": True, "bus": rt.bus.up, "centre": ctx.centre is not None})

    return router
