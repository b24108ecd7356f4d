"""Intake HTTP API (DESIGN §4): register, case view, petitioner's query. Translates only."""

import asyncio
from typing import Annotated

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.intake import handlers
from services.intake.adapters.orm import CaseRow, QueryCodeRow
from services.intake.domain.identifiers import query_code_hash
from services.intake.domain.petition import PetitionIn
from services.intake.entrypoints.audit import ReadTrail
from shared import rpc
from shared.db.base import utcnow
from shared.db.plumbing import audit
from shared.errors import Forbidden, NotFound, Unavailable
from shared.pb import case_pb2, case_pb2_grpc
from shared.web import Principal, RateLimiter, caller

ERRORS = {401: {"description": "未登录或令牌无效"}, 404: {"description": "案件不存在或未与本机构共享"},
          422: {"description": "输入无效: error.field names the field"}}


def build_router(rt, ctx: handlers.IntakeContext) -> APIRouter:
    router = APIRouter()
    query_limiter = RateLimiter(per_minute=30, burst=10)
    case_reads = ReadTrail()

    User = caller(rt.cfg)

    @router.post("/api/v1/petitions", status_code=201, responses=ERRORS, summary="登记信访事项 register a petition")
    async def register(body: PetitionIn, who: User,
                       idempotency_key: Annotated[str | None, Header(max_length=200)] = None):
        if who.role not in ("clerk", "handler", "admin"):
            raise Forbidden("无登记权限 (role may not register petitions)")
        return await rt.db.run_async(lambda s: handlers.register_petition(s, ctx, body, who, idempotency_key))

    @router.get("/api/v1/cases/{case_id}", responses=ERRORS, summary="案件视图 shared case view")
    async def get_case(case_id: str, who: User, include_identity: bool = Query(False, alias="identity")):
        def read():  # a plain read: the case view never waits for the node's writers
            with rt.db.read() as s:
                case = s.get(CaseRow, case_id)
                if case is None:
                    raise NotFound(f"案件 {case_id} 不存在或未与本机构共享 (not found)")
                view = handlers.case_view(s, rt.directory, case, utcnow())
                authorised = include_identity and handlers.may_see_identity(rt.agency, case.state, rt.agency, who.role)
                return view, case.state["origin"], authorised

        view, origin, authorised = await asyncio.to_thread(read)
        view["petitioners"] = None
        if authorised and origin == rt.agency:
            view["petitioners"] = await rt.db.run_async(lambda s: handlers.disclose_identity(
                s, ctx.cipher, rt.agency, who.user, case_id, "identity.read"))
        elif authorised:  # the receiving node decides again on its own view
            view["petitioners"] = await _remote_identity(rt, origin, case_id, who)
        if case_reads.due(who.user, case_id):  # the read of case data is on record before it is answered
            try:
                await rt.db.run_async(lambda s: audit(s, agency=rt.agency, actor=who.user,
                                                                   action="case.read", object_id=case_id))
            except Exception:
                case_reads.forget(who.user, case_id)
                raise
        return view

    @router.get("/api/v1/query/{query_code}", summary="信访人查询 petitioner's progress by 查询码")
    async def query(query_code: str, request: Request):
        query_limiter.check(request.client.host if request.client else "?")

        def read():
            with rt.db.read() as s:
                row = s.get(QueryCodeRow, query_code_hash(query_code))
                case = s.get(CaseRow, row.case_id) if row else None
                if case is None:
                    raise NotFound("查询码无效 (unknown query code)")
                return handlers.query_view(handlers.case_view(s, rt.directory, case, utcnow()))

        return await asyncio.to_thread(read)

    @router.get("/healthz", include_in_schema=False)
    async def healthz():
        return JSONResponse({"ok": True, "bus": rt.bus.up})

    return router


async def _remote_identity(rt, origin: str, case_id: str, who: Principal) -> list[dict] | None:
    """Identity lives only at the receiving node; a handling node asks it on its user's behalf."""
    entry = rt.directory.get(origin)
    if entry is None or not entry.grpc.get("intake"):
        return None
    try:
        ch = rt.channels.get(entry.grpc.get("intake"))
        reply = await case_pb2_grpc.CaseServiceStub(ch).GetCase(
            case_pb2.GetCaseRequest(case_id=case_id), timeout=rpc.DEFAULT_DEADLINE_S,
            metadata=rpc.call_metadata(rt.agency, who.user, who.role))
    except grpc.aio.AioRpcError as e:
        if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            return None  # the receiving node does not (yet) see this body as handling the case: no identity
        raise Unavailable(f"受理机构节点 {origin} 暂时无法访问，信访人身份信息暂不可得，请稍后重试 "
                          f"(the receiving node is unreachable: identity unavailable, retry later)") from None
    if not reply.identity_disclosed:
        return None
    await rt.db.run_async(lambda s: audit(s, agency=rt.agency, actor=who.user, action="identity.read",
                                                       object_id=case_id, detail=f"fetched from {origin}"))
    p = reply.petitioner
    return [{"role": "petitioner", "name": p.name, "id_number": p.id_number or None, "phone": p.phone or None,
             "address": p.address or None}]
