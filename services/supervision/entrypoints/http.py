"""Supervision HTTP API: handling commands on the holder's node, the supervision queues, 领导包案 and
考核. Translates only: body → handler inside a unit of work → JSON."""

import asyncio
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.supervision import handlers
from services.supervision.domain.assessment import to_csv
from shared import clock, divisions, ledger
from shared.errors import Forbidden, Invalid
from shared.web import Principal, caller

HANDLE_ROLES = {"handler", "leader", "admin"}          # 承办人, 领导: accept, reply, extend, decide
RECORD_ROLES = {"clerk", "handler", "leader", "admin"}  # record a petitioner's application or rating
SUPERVISE_ROLES = {"supervisor", "admin"}              # 督查员: 领导包案
ERRORS = {401: {"description": "未登录或令牌无效"}, 403: {"description": "角色或机构无权办理"},
          404: {"description": "案件不存在或未与本机构共享"},
          409: {"description": "与案件当前状态冲突（如已延期一次、三级终结）"},
          422: {"description": "输入无效或超过法定期限（如答复后第31日申请复查）"}}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AcceptIn(_In):
    notice: str | None = Field(default=None, max_length=2000, description="受理告知书 text (a standard one if absent)")


class DeclineIn(_In):
    reason: str = Field(min_length=2, max_length=2000, description="不予受理的理由")


class ReplyIn(_In):
    title: str | None = Field(default=None, max_length=200, description="默认“信访处理意见书”")
    text: str = Field(min_length=10, max_length=20000, description="信访处理意见书正文（不得含身份证号、手机号）")


class ExtendIn(_In):
    days: int = Field(description=f"延期天数，1至{ledger.EXTENSION_MAX_DAYS}日")
    approver: str = Field(min_length=2, max_length=60, description="批准延期的负责人")
    reason: str = Field(min_length=2, max_length=1000, description="延期理由")


class RatingIn(_In):
    rating: Literal["满意", "基本满意", "不满意"]
    source: Literal["petitioner", "follow_up"] = Field(default="petitioner", description="信访人评价 / 回访")
    note: str | None = Field(default=None, max_length=1000)


class ApplicationIn(_In):
    reason: str | None = Field(default=None, max_length=2000, description="申请理由")


class DecisionIn(_In):
    outcome: Literal["维持", "变更", "撤销"] = Field(description="维持原处理意见 / 变更 / 撤销")
    text: str = Field(min_length=10, max_length=20000, description="复查（复核）意见书正文")


class LeaderIn(_In):
    leader: str = Field(min_length=2, max_length=60, description="包案领导姓名")
    title: str | None = Field(default=None, max_length=60, description="职务")


def build_router(rt, ctx: handlers.SupervisionContext) -> APIRouter:
    router = APIRouter()

    User = caller(rt.cfg)

    async def command(who: Principal, roles: set[str], what: str, work) -> dict:
        if who.role not in roles:
            raise Forbidden(f"当前角色无权{what} (role may not do this)")
        return await rt.db.run_async(work)

    def read(work):
        def run():
            with rt.db.read() as s:
                return work(s)
        return asyncio.to_thread(run)

    base = "/api/v1/supervision/cases/{case_id}"

    @router.get(base, responses=ERRORS, summary="案件时限、督办与文书 a case's clocks, orders and documents")
    async def get_case(case_id: str, who: User):
        return await read(lambda s: handlers.get_case_view(s, ctx, case_id))

    @router.get("/api/v1/supervision/cases", summary="本机构承办（或督办）的案件及其时限")
    async def list_cases(who: User, scope: Literal["held", "supervised", "all"] = "held", open_only: bool = True):
        return {"agency": rt.agency, "cases": await read(lambda s: handlers.cases_list(s, ctx, scope=scope,
                                                                                       open_only=open_only))}

    @router.post(f"{base}/accept", responses=ERRORS, summary="受理 accept (受理告知)")
    async def accept(case_id: str, body: AcceptIn, who: User):
        return await command(who, HANDLE_ROLES, "受理", lambda s: handlers.accept(s, ctx, case_id, who, body.notice))

    @router.post(f"{base}/decline", responses=ERRORS, summary="不予受理 decline, with the reason")
    async def decline(case_id: str, body: DeclineIn, who: User):
        return await command(who, HANDLE_ROLES, "作出不予受理决定",
                             lambda s: handlers.decline(s, ctx, case_id, who, body.reason))

    @router.post(f"{base}/reply", responses=ERRORS, summary="答复 reply with the 信访处理意见书")
    async def reply(case_id: str, body: ReplyIn, who: User):
        return await command(who, HANDLE_ROLES, "答复",
                             lambda s: handlers.reply(s, ctx, case_id, who, body.title, body.text))

    @router.post(f"{base}/extend", responses=ERRORS, summary="延期 extend handling once (≤ 30 days, approved)")
    async def extend(case_id: str, body: ExtendIn, who: User):
        return await command(who, HANDLE_ROLES, "延期",
                             lambda s: handlers.extend(s, ctx, case_id, who, body.days, body.approver, body.reason))

    @router.post(f"{base}/satisfaction", responses=ERRORS, summary="满意度 record the petitioner's rating")
    async def satisfaction(case_id: str, body: RatingIn, who: User):
        return await command(who, RECORD_ROLES, "登记满意度",
                             lambda s: handlers.rate(s, ctx, case_id, who, body.rating, body.source, body.note))

    @router.post(f"{base}/review-request", responses=ERRORS, summary="复查申请 (within 30 days of the reply)")
    async def review_request(case_id: str, body: ApplicationIn, who: User):
        return await command(who, RECORD_ROLES, "登记复查申请",
                             lambda s: handlers.request_review(s, ctx, case_id, who, body.reason))

    @router.post(f"{base}/review-decision", responses=ERRORS, summary="复查意见 by the next-higher body")
    async def review_decision(case_id: str, body: DecisionIn, who: User):
        return await command(who, HANDLE_ROLES, "作出复查意见",
                             lambda s: handlers.decide_review(s, ctx, case_id, who, body.outcome, body.text))

    @router.post(f"{base}/re-review-request", responses=ERRORS, summary="复核申请 (within 30 days of the review)")
    async def re_review_request(case_id: str, body: ApplicationIn, who: User):
        return await command(who, RECORD_ROLES, "登记复核申请",
                             lambda s: handlers.request_re_review(s, ctx, case_id, who, body.reason))

    @router.post(f"{base}/re-review-decision", responses=ERRORS, summary="复核意见 → 三级终结")
    async def re_review_decision(case_id: str, body: DecisionIn, who: User):
        return await command(who, HANDLE_ROLES, "作出复核意见",
                             lambda s: handlers.decide_re_review(s, ctx, case_id, who, body.outcome, body.text))

    @router.post(f"{base}/leader", responses=ERRORS, summary="领导包案 assign a named leader")
    async def leader(case_id: str, body: LeaderIn, who: User):
        return await command(who, SUPERVISE_ROLES, "指定包案领导",
                             lambda s: handlers.assign_leader(s, ctx, case_id, who, body.leader, body.title))

    @router.get("/api/v1/supervision/leaders/{leader}/cases", summary="包案领导名下未结案件")
    async def leader_cases(leader: str, who: User, open_only: bool = True):
        return {"leader": leader, "cases": await read(lambda s: handlers.cases_list(s, ctx, leader=leader,
                                                                                    open_only=open_only))}

    @router.get("/api/v1/supervision/orders", summary="督办单 supervision orders (default: addressed to this node)")
    async def orders(who: User, scope: Literal["mine", "issued", "all"] = "mine",
                     status: Literal["open", "closed"] | None = None):
        return {"agency": rt.agency, "orders": await read(lambda s: handlers.notices(s, ctx, "order", scope, status))}

    @router.get("/api/v1/supervision/reminders", summary="催办 reminders (default: addressed to this node)")
    async def reminders(who: User, scope: Literal["mine", "issued", "all"] = "mine"):
        return {"agency": rt.agency, "reminders": await read(lambda s: handlers.notices(s, ctx, "reminder", scope,
                                                                                        None))}

    @router.get("/api/v1/supervision/accountability", summary="责任追究 records (body, deadline, days late)")
    async def accountability(who: User, scope: Literal["mine", "issued", "all"] = "all"):
        return {"agency": rt.agency,
                "records": await read(lambda s: handlers.notices(s, ctx, "accountability", scope, None))}

    @router.get("/api/v1/supervision/documents/{doc_id}", summary="文书 a written decision")
    async def get_document(doc_id: str, who: User):
        return await read(lambda s: handlers.document(s, ctx, doc_id))

    @router.get("/api/v1/assessment", summary="考核 assessment per agency and division (JSON or CSV)")
    async def assess(request: Request, who: User,
                     date_from: Annotated[date | None, Query(alias="from", description="登记日期起 YYYY-MM-DD")] = None,
                     date_to: Annotated[date | None, Query(alias="to", description="登记日期止 YYYY-MM-DD")] = None,
                     division: str | None = None, agency: str | None = None,
                     format: Literal["json", "csv"] | None = None,
                     cases: Annotated[bool, Query(description="also list the population's case ids")] = False):
        today = ledger.local_date(clock.now())
        date_to = date_to or today
        date_from = date_from or date_to.replace(month=1, day=1)
        if date_from > date_to:
            raise Invalid("from: 起始日期不能晚于截止日期 (from after to)", "from")
        if division:
            try:
                divisions.name(division)
            except divisions.UnknownDivision as e:
                raise Invalid(f"division: {e}", "division") from None
        if agency and ctx.directory.get(agency) is None:
            raise Invalid(f"agency: 未知机构 unknown agency {agency}", "agency")
        report = await read(lambda s: handlers.assessment_report(s, ctx, date_from=date_from, date_to=date_to,
                                                                 division=division, agency=agency,
                                                                 with_cases=cases))
        if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
            name = f"assessment_{date_from}_{date_to}.csv"
            return Response(to_csv(report), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return report

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return JSONResponse({"ok": True, "bus": rt.bus.up})

    return router
