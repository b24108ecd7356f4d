"""AssignmentService (gRPC) at the target node: receives 交办 offers."""
from __future__ import annotations


import grpc

from services.routing import handlers
from shared import rpc
from shared.pb import assignment_pb2, assignment_pb2_grpc
from shared.runtime import ServiceRuntime

_DECISIONS = {"pending": assignment_pb2.OfferReply.PENDING, "signed": assignment_pb2.OfferReply.SIGNED,
              "returned": assignment_pb2.OfferReply.RETURNED}


class AssignmentServicer(assignment_pb2_grpc.AssignmentServiceServicer):
    def __init__(self, rt: ServiceRuntime, ctx: handlers.RoutingContext):
        self.rt, self.ctx = rt, ctx

    async def Offer(self, request, context):
        with rpc.server_span(context, "AssignmentService/Offer"):
            who = rpc.caller(context)
            if who["agency"] != request.from_agency or self.rt.directory.get(who["agency"]) is None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "caller may not offer on behalf of another agency")
            offer = await self.rt.db.run_async(lambda s: handlers.receive_offer(s, self.ctx, request))
            return assignment_pb2.OfferReply(decision=_DECISIONS[offer.status], reason=offer.answer_reason or "")
