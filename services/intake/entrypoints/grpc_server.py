"""CaseService (gRPC): the authorised full view of a case for another node's user."""
from __future__ import annotations

import asyncio
import json

from services.intake import handlers
from services.intake.adapters.orm import CaseRow
from shared import rpc
from shared.db.base import utcnow
from shared.pb import case_pb2, case_pb2_grpc
from shared.runtime import ServiceRuntime


class CaseServicer(case_pb2_grpc.CaseServiceServicer):
    def __init__(self, rt: ServiceRuntime, ctx: handlers.IntakeContext):
        self.rt, self.ctx = rt, ctx

    def _view(self, case_id: str, who: dict) -> case_pb2.CaseView | None:
        with self.rt.db.read() as s:  # a plain read: the view never waits for the node's writers
            case = s.get(CaseRow, case_id)
            if case is None or who["agency"] not in case.state.get("audience", []):
                return None  # not shared with the caller: indistinguishable from unknown
            view = handlers.case_view(s, self.rt.directory, case, utcnow())
            state = case.state
        reply = case_pb2.CaseView(case_id=case_id, status=view["status"], category=view["category"] or "",
                                  division=view["division"], holder=view["holder"], lead=view["lead"] or "",
                                  co_handlers=view["co_handlers"], risk_level=view["risk_level"] or "",
                                  view_json=json.dumps(view, ensure_ascii=False))
        if state["origin"] == self.rt.agency and handlers.may_see_identity(self.rt.agency, state, who["agency"],
                                                                           who["role"]):
            people = self.rt.db.run(lambda s: handlers.disclose_identity(
                s, self.ctx.cipher, self.rt.agency, f"{who['agency']}/{who['user']}", case_id, "identity.disclose",
                detail="via CaseService.GetCase"))
            if people:
                first = people[0]
                reply.petitioner.CopyFrom(case_pb2.Petitioner(**{k: first[k] or "" for k in
                                                                 ("name", "id_number", "phone", "address")}))
                reply.identity_disclosed = True
        return reply

    async def GetCase(self, request, context):
        with rpc.server_span(context, "CaseService/GetCase"):
            who = rpc.caller(context)
            if not who["agency"] or self.rt.directory.get(who["agency"]) is None:
                await context.abort(rpc.grpc.StatusCode.UNAUTHENTICATED, "unknown calling agency")
            reply = await asyncio.to_thread(self._view, request.case_id, who)
            if reply is None:
                await context.abort(rpc.grpc.StatusCode.NOT_FOUND, f"case {request.case_id} not found")
            return reply
