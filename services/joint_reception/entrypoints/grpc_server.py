"""JointReceptionService (gRPC): invitations at an invited node; window views and tickets at the centre."""
from __future__ import annotations

import asyncio

import grpc

from services.joint_reception import handlers
from shared import rpc
from shared.errors import LianfangError, abort_grpc
from shared.pb import joint_reception_pb2 as pb
from shared.pb import joint_reception_pb2_grpc as pb_grpc
from shared.runtime import ServiceRuntime

_ANSWERS = {"pending": pb.InviteReply.PENDING, "accepted": pb.InviteReply.ACCEPTED,
            "declined": pb.InviteReply.DECLINED}


def ticket_pb(t: dict) -> pb.Ticket:
    return pb.Ticket(ticket_id=t["ticket_id"], number=t["number"], topic=t["topic"], category=t["category"],
                     window_id=t["window_id"], window_agency=t["window_agency"], case_id=t["case_id"],
                     status=t["status"], issued_at=t["issued_at"], called_at=t["called_at"] or "",
                     served_at=t["served_at"] or "", waited_minutes=t["waited_minutes"], persons=t["persons"],
                     collective=t["collective"], ahead=t["ahead"] or 0)


def window_view_pb(v: dict) -> pb.WindowView:
    return pb.WindowView(
        centre=v["centre"], centre_name=v["centre_name"], date=v["date"],
        windows=[pb.WindowQueue(window_id=w["window_id"], name=w["name"], topics=w["topics"],
                                waiting=[ticket_pb(t) for t in w["waiting"]], called=[ticket_pb(t) for t in w["called"]],
                                served_today=w["served_today"], avg_wait_minutes=w["avg_wait_minutes"])
                 for w in v["windows"]],
        sessions=[pb.SessionSummary(**x) for x in v["sessions"]],
        hearings=[pb.HearingSummary(hearing_id=h["hearing_id"], case_id=h["case_id"], scheduled_at=h["scheduled_at"],
                                    place=h["place"], status=h["status"]) for h in v["hearings"]],
        leader_days=[pb.LeaderDay(date=d["date"], leader=d["leader"] or "", title=d["title"] or "", topics=d["topics"])
                     for d in v["leader_days"]])


class JointReceptionServicer(pb_grpc.JointReceptionServiceServicer):
    def __init__(self, rt: ServiceRuntime, ctx: handlers.CentreContext):
        self.rt, self.ctx = rt, ctx

    async def Invite(self, request, context):
        with rpc.server_span(context, "JointReceptionService/Invite"):
            who = rpc.caller(context)
            entry = self.rt.directory.get(who["agency"])
            if who["agency"] != request.centre or entry is None or entry.type != "petition_bureau":
                await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                    "only the petition-bureau node hosting the centre may invite")
            inv = await self.rt.db.run_async(lambda s: handlers.receive_invitation(s, self.ctx, request))
            return pb.InviteReply(answer=_ANSWERS[inv.status], reason=inv.reason or "")

    async def GetWindow(self, request, context):
        with rpc.server_span(context, "JointReceptionService/GetWindow"):
            who = rpc.caller(context)
            agency = request.agency or who["agency"]
            if not who["agency"] or agency != who["agency"]:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "an agency sees its own windows only")

            def read():
                with self.rt.db.read() as s:
                    return handlers.window_view(s, self.ctx, agency)
            try:
                return window_view_pb(await asyncio.to_thread(read))
            except LianfangError as e:
                await abort_grpc(context, e)

    async def UpdateTicket(self, request, context):
        with rpc.server_span(context, "JointReceptionService/UpdateTicket"):
            who = rpc.caller(context)
            if not who["agency"]:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown calling agency")
            act = {pb.UpdateTicketRequest.CALL: handlers.call_ticket,
                   pb.UpdateTicketRequest.SERVE: handlers.serve_ticket}.get(request.action)
            if act is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "action must be CALL or SERVE")
            actor = f"{who['agency']}/{who['user'] or 'window'}"

            def work(s):
                t = act(s, self.ctx, request.ticket_id, actor, agency=who["agency"])
                return handlers.ticket_json(self.ctx, t, handlers.now())
            try:
                out = await self.rt.db.run_async(work)
            except LianfangError as e:
                await abort_grpc(context, e)
            return ticket_pb(out)
