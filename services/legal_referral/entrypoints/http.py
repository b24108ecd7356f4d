"""Legal-referral HTTP API (诉访分离). Translates only: body → handler → JSON.

At the referring node: the channel catalogue, a dry-run classification, a case's classification(s) and
written notice, a clerk's override, relief requests. At the receiving body: its referral queue, accept /
decline, status changes, the 检调对接 "5+1" steps (procuratorate), relief decisions. Every node: relief
totals per deciding body."""

import asyncio
import datetime as dt
from dataclasses import asdict
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from services.legal_referral import handlers
from services.legal_referral.adapters.orm import LegalCase, ReferralIn
from services.legal_referral.domain import channels, steps
from services.legal_referral.domain.relief import yuan
from shared import divisions
from shared.categories import CATEGORIES
from shared.errors import Forbidden, NotFound
from shared.web import Principal, caller

ACT_ROLES = {"clerk", "handler", "leader", "admin"}
ERRORS = {401: {"description": "未登录或令牌无效"}, 403: {"description": "无权限"},
          404: {"description": "本节点没有该案件或移送"}, 409: {"description": "状态冲突（如跳过步骤、已处理）"},
          422: {"description": "输入无效: error.field names the field"}}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ClassifyIn(_In):
    division: str = Field(description="GB/T 2260 division code of the matter")
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(default="", max_length=5000)
    category: str | None = Field(default=None, description="类别")
    reported_agency: str | None = Field(default=None, description="检举控告: the body reported on")

    @field_validator("division")
    @classmethod
    def _division(cls, v):
        divisions.name(v)  # UnknownDivision (a ValueError) names the code
        return v

    @field_validator("category")
    @classmethod
    def _category(cls, v):
        if v is not None and v not in CATEGORIES:
            raise ValueError(f"未知类别 unknown category; one of {', '.join(CATEGORIES)}")
        return v


class OverrideIn(_In):
    channel: str = Field(description="channel id, e.g. labour_arbitration (GET /api/v1/legal/channels)")
    reason: str = Field(min_length=2, max_length=500, description="改判理由")
    body: str | None = Field(default=None, description="agency id of the receiving body (default: by division)")


class ReasonIn(_In):
    reason: str = Field(min_length=2, max_length=500, description="退回理由")


class ProgressIn(_In):
    status: Literal["filed", "decided", "withdrawn"] = Field(description="filed 立案受理, decided 作出决定, withdrawn 撤回")
    note: str = Field(default="", max_length=2000, description="说明（如裁决结果）")
    reference: str | None = Field(default=None, max_length=100, description="案号、文书号")


class StepIn(_In):
    step: Literal[steps.ALL_STEPS] = Field(description="书面告知 风险评估 预调解 监督和解 跟踪回访, or 公开听证")
    date: dt.date = Field(description="date the step took place (YYYY-MM-DD)")
    outcome: str = Field(min_length=1, max_length=2000, description="结果")
    hearing: bool = Field(default=False, description="风险评估: 决定举行公开听证")


class ReliefIn(_In):
    kind: str = Field(description="judicial_relief 司法救助 or social_assistance 低保/临时救助")
    amount: Decimal = Field(description="amount requested in yuan, e.g. 30000.00")
    basis: str = Field(min_length=2, max_length=2000, description="申请依据")
    to: str | None = Field(default=None, description="agency id of the deciding body (default: by rules)")

    @field_validator("amount")
    @classmethod
    def _amount(cls, v):
        return yuan(v)


class ReliefDecisionIn(_In):
    approve: bool
    amount_granted: Decimal | None = Field(default=None, description="批准金额（元）")
    reason: str | None = Field(default=None, max_length=2000, description="理由（不予救助时必填）")

    @field_validator("amount_granted")
    @classmethod
    def _amount(cls, v):
        return None if v is None else yuan(v)


def build_router(rt, ctx: handlers.LegalContext) -> APIRouter:
    router = APIRouter()

    User = caller(rt.cfg)

    def acting(who: Principal) -> None:
        if who.role not in ACT_ROLES:
            raise Forbidden("无办理权限 (role may not act on referrals)")

    async def run(work):
        return await rt.db.run_async(work)

    async def read(work):
        def go():
            with rt.db.read() as s:
                return work(s)
        return await asyncio.to_thread(go)

    # --- the referring node --------------------------------------------------------------------------

    @router.get("/api/v1/legal/channels", summary="法律渠道目录 channels, bodies, materials, time limits")
    async def catalogue(who: User):
        return {"channels": [c.to_json() for c in ctx.catalogue.channels.values()],
                "rules": [{"id": r.id, "channel": r.channel, "why": r.why, "categories": list(r.categories),
                           "keywords": ["+".join(k) for k in r.keywords]} for r in ctx.catalogue.rules]}

    @router.post("/api/v1/legal/classify", responses=ERRORS, summary="试分类 classify a text (nothing recorded)")
    async def classify(body: ClassifyIn, who: User):
        found = list(channels.candidates(ctx.catalogue, ctx.directory, category=body.category, division=body.division,
                                         text=body.title + body.content, reported_agency=body.reported_agency))
        return {"classification": asdict(found[0]) if found else None,
                "alternatives": [asdict(c) for c in found[1:]]}

    def origin_case(s, case_id: str) -> LegalCase:
        lc = s.get(LegalCase, case_id)
        if lc is None or lc.status == "registered":
            raise NotFound(f"本节点没有分流案件 {case_id} (not classified here)")
        return lc

    @router.get("/api/v1/legal/cases/{case_id}", responses=ERRORS, summary="分流记录 classification(s), declines, notice")
    async def legal_case(case_id: str, who: User):
        return await read(lambda s: handlers.legal_case_json(origin_case(s, case_id)))

    @router.get("/api/v1/legal/cases/{case_id}/notice", responses=ERRORS, summary="书面告知 the written notice")
    async def legal_notice(case_id: str, who: User):
        def get(s):
            lc = origin_case(s, case_id)
            if lc.notice is None:
                raise NotFound("尚未出具书面告知（移送尚未被接收）(no notice yet)")
            return lc.notice
        return await read(get)

    @router.post("/api/v1/legal/cases/{case_id}/classification", responses=ERRORS,
                 summary="人工改判 override the classification with a reason")
    async def override(case_id: str, body: OverrideIn, who: User):
        acting(who)
        return await run(lambda s: handlers.override_classification(s, ctx, case_id, body.channel, body.reason,
                                                                    body.body, who.user))

    @router.post("/api/v1/legal/cases/{case_id}/relief", status_code=201, responses=ERRORS,
                 summary="救助申请 request judicial or social relief for a case")
    async def relief_request(case_id: str, body: ReliefIn, who: User):
        acting(who)
        return await run(lambda s: handlers.request_relief(s, ctx, case_id, body.kind, body.amount, body.basis,
                                                           body.to, who.user))

    # --- the receiving body --------------------------------------------------------------------------

    @router.get("/api/v1/referrals", summary="移送队列 referrals received (status pending by default)")
    async def queue(who: User, status: str = "pending", kind: str | None = None):
        def get(s):
            q = select(ReferralIn).where(ReferralIn.status == status).order_by(ReferralIn.received_at)
            if kind:
                q = q.where(ReferralIn.kind == kind)
            return {"agency": rt.agency, "referrals": [handlers.referral_json(r) for r in s.scalars(q)]}
        return await read(get)

    @router.get("/api/v1/referrals/{case_id}", responses=ERRORS, summary="一件移送 the latest referral of a case")
    async def referral(case_id: str, who: User):
        return await read(lambda s: handlers.referral_json(handlers.referral_for_case(s, case_id)))

    def on_referral(case_id: str, who: Principal, act):
        acting(who)

        def work(s):
            r = handlers.referral_for_case(s, case_id)
            out = act(s, r)
            return out if out is not None else handlers.referral_json(r)
        return run(work)

    @router.post("/api/v1/referrals/{case_id}/accept", responses=ERRORS, summary="接收 accept (issues the receipt)")
    async def accept(case_id: str, who: User):
        return await on_referral(case_id, who, lambda s, r: handlers.accept(s, ctx, r, who.user))

    @router.post("/api/v1/referrals/{case_id}/decline", responses=ERRORS, summary="退回 decline with a reason")
    async def decline(case_id: str, body: ReasonIn, who: User):
        return await on_referral(case_id, who, lambda s, r: handlers.decline(s, ctx, r, who.user, body.reason))

    @router.post("/api/v1/referrals/{case_id}/status", responses=ERRORS,
                 summary="进展 filed / decided / withdrawn")
    async def progress(case_id: str, body: ProgressIn, who: User):
        return await on_referral(case_id, who, lambda s, r: handlers.report_progress(
            s, ctx, r, body.status, body.note, body.reference, who.user))

    @router.post("/api/v1/referrals/{case_id}/steps", responses=ERRORS,
                 summary="检调对接 5+1: record a step in order (409 names a skipped step)")
    async def step(case_id: str, body: StepIn, who: User):
        return await on_referral(case_id, who, lambda s, r: handlers.record_step(
            s, ctx, r, body.step, body.date, body.outcome, body.hearing, who.user))

    # --- relief: receiving body, and totals everywhere ----------------------------------------------

    @router.get("/api/v1/relief/totals", summary="救助统计 totals per deciding body, from the ledger")
    async def relief_totals(who: User):
        return {"agency": rt.agency, **await read(lambda s: handlers.relief_totals(s, rt.directory))}

    def relief_in(s, request_id: str) -> ReferralIn:
        r = s.get(ReferralIn, request_id)
        if r is None or r.kind != handlers.RELIEF:
            raise NotFound(f"本机关没有救助申请 {request_id} (no such relief request)")
        return r

    @router.get("/api/v1/relief/{request_id}", responses=ERRORS, summary="一件救助申请 a relief request received")
    async def relief_get(request_id: str, who: User):
        return await read(lambda s: handlers.referral_json(relief_in(s, request_id)))

    def on_relief(request_id: str, who: Principal, act):
        acting(who)

        def work(s):
            r = relief_in(s, request_id)
            out = act(s, r)
            return out if out is not None else handlers.referral_json(r)
        return run(work)

    @router.post("/api/v1/relief/{request_id}/accept", responses=ERRORS, summary="接收救助申请 (receipt)")
    async def relief_accept(request_id: str, who: User):
        return await on_relief(request_id, who, lambda s, r: handlers.accept(s, ctx, r, who.user))

    @router.post("/api/v1/relief/{request_id}/decision", responses=ERRORS,
                 summary="救助决定 approve an amount or refuse with a reason")
    async def relief_decide(request_id: str, body: ReliefDecisionIn, who: User):
        return await on_relief(request_id, who, lambda s, r: handlers.decide_relief(
            s, ctx, r, body.approve, body.amount_granted, body.reason, who.user))

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return JSONResponse({"ok": True, "bus": rt.bus.up})

    return router
