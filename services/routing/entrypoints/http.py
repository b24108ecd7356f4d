"""Routing HTTP views for a handler: the agency's offer queue, sign/return, a case's routing decisions."""

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.routing import handlers
from services.routing.adapters.orm import OfferIn, RoutedCase
from shared.errors import Forbidden, NotFound
from shared.web import Principal, caller

ANSWER_ROLES = {"clerk", "handler", "leader", "admin"}


class ReturnIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=2, max_length=500, description="退回理由")


def _offer_json(o: OfferIn) -> dict:
    return {"case_id": o.case_id, "attempt": o.attempt, "from_agency": o.from_agency, "category": o.category,
            "division": o.division, "title": o.title, "rule": o.rule, "reason": o.reason,
            "skipped_level": o.skipped_level, "status": o.status, "answer_reason": o.answer_reason,
            "received_at": o.received_at.isoformat()}


def build_router(rt, ctx: handlers.RoutingContext) -> APIRouter:
    router = APIRouter()

    User = caller(rt.cfg)

    def answer(who: Principal, case_id: str, act) -> dict:
        if who.role not in ANSWER_ROLES:
            raise Forbidden("无签收/退回权限 (role may not answer offers)")

        def work(s):
            offer = handlers.pending_offer(s, case_id)
            act(s, offer)
            return _offer_json(offer)
        return rt.db.run(work)

    @router.get("/api/v1/offers", summary="待签收 the agency's offer queue")
    async def offers(who: User, status: str = "pending"):
        def read():
            with rt.db.read() as s:
                return [_offer_json(o) for o in s.scalars(select(OfferIn).where(OfferIn.status == status)
                                                          .order_by(OfferIn.received_at))]
        return {"agency": rt.agency, "offers": await asyncio.to_thread(read)}

    @router.post("/api/v1/offers/{case_id}/sign", summary="签收 sign for an offered case")
    async def sign(case_id: str, who: User):
        return await asyncio.to_thread(answer, who, case_id, lambda s, o: handlers.sign_for(s, ctx, o, who.user))

    @router.post("/api/v1/offers/{case_id}/return", summary="退回 return an offered case with a reason")
    async def give_back(case_id: str, body: ReturnIn, who: User):
        return await asyncio.to_thread(answer, who, case_id,
                                       lambda s, o: handlers.return_offer(s, ctx, o, who.user, body.reason))

    @router.get("/api/v1/routing/{case_id}", summary="分办决定 a case's routing decisions and reasons")
    async def decisions(case_id: str, who: User):
        def read():
            with rt.db.read() as s:
                rc = s.get(RoutedCase, case_id)
                if rc is None:
                    raise NotFound(f"本节点未分办案件 {case_id} (not routed here)")
                return {"case_id": case_id, "returns": rc.returns, "excluded": rc.excluded, "decisions": rc.decisions}
        return await asyncio.to_thread(read)

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return JSONResponse({"ok": True, "bus": rt.bus.up})

    return router
