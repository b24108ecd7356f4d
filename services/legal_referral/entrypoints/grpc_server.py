"""LegalReferralService (gRPC) at the receiving body: takes 移送 and 救助申请, answers with a receipt."""
from __future__ import annotations


import grpc

from services.legal_referral import handlers
from shared import rpc
from shared.errors import LianfangError, abort_grpc
from shared.pb import referral_pb2, referral_pb2_grpc
from shared.runtime import ServiceRuntime

Reply = referral_pb2.ReferReply


def _decision(status: str) -> int:
    if status == "pending":
        return Reply.PENDING
    if status in ("declined", "superseded"):
        return Reply.DECLINED
    return Reply.ACCEPTED


class LegalReferralServicer(referral_pb2_grpc.LegalReferralServiceServicer):
    def __init__(self, rt: ServiceRuntime, ctx: handlers.LegalContext):
        self.rt, self.ctx = rt, ctx

    async def Refer(self, request, context):
        with rpc.server_span(context, "LegalReferralService/Refer"):
            who = rpc.caller(context)
            if who["agency"] != request.from_agency or self.rt.directory.get(who["agency"]) is None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "caller may not refer on behalf of another agency")
            if not request.ref_id or not request.case_id or not request.channel:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ref_id, case_id and channel are required")
            try:
                r = await self.rt.db.run_async(lambda s: handlers.receive_referral(s, self.ctx, request))
            except LianfangError as e:
                await abort_grpc(context, e)
            reason = r.answer_reason or ("已被新的移送取代" if r.status == "superseded" else "")
            return Reply(decision=_decision(r.status), receipt_no=r.receipt_no or "", reason=reason)
