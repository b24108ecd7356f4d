"""The centre's durable consumer (which cases it shares, invitation answers) and its dispatcher: tickets'
case events once the case is on the ledger, and invitations delivered over gRPC, retried until the
invited node answers — a node that is down during the invitation gets it after restart."""
from __future__ import annotations

import asyncio
import logging

import grpc
from sqlalchemy import select

from services.joint_reception import handlers
from services.joint_reception.adapters.orm import InvitationOut, KnownCase
from shared import ledger, rpc, wakeup
from shared.bus.envelope import Event
from shared.bus.jetstream import PROJECTION_LINGER_S
from shared.db.plumbing import next_retry
from shared.db.session import PER_UNIT
from shared.pb import joint_reception_pb2 as pb
from shared.pb import joint_reception_pb2_grpc as pb_grpc
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
_ANSWERS = {pb.InviteReply.ACCEPTED: "accepted", pb.InviteReply.DECLINED: "declined"}


class CentreWorker:
    def __init__(self, rt: ServiceRuntime, ctx: handlers.CentreContext):
        self.rt, self.ctx = rt, ctx
        self.consumer = f"joint_reception-{rt.agency}"
        # the cases the centre shares → their audience as last stored: an event that adds nothing to it
        # (most of a case's events) is passed over without a unit of work
        self._known: dict[str, frozenset[str]] = {}  # (loaded before consuming)
        self._audiences: dict[frozenset[str], frozenset[str]] = {}  # one copy of each audience (memory)

    def _remember(self, case_id: str, audience) -> None:
        fs = frozenset(audience)
        self._known[case_id] = self._audiences.setdefault(fs, fs)

    async def handle(self, event: Event, seq: int) -> None:
        await self.together([(event, seq)])

    async def together(self, events: list[tuple[Event, int]]) -> None:
        """A pulled batch in units of work of up to PER_UNIT events (idempotent: a replay changes nothing)."""
        for start in range(0, len(events), PER_UNIT):
            part = [event for event, _ in events[start:start + PER_UNIT]]
            audiences = await self.rt.db.run_async(lambda s: [handlers.on_event(s, self.ctx, ev) for ev in part])
            for event, audience in zip(part, audiences):
                if audience is not None:
                    self._remember(event.case_id, audience)

    def _load_known(self) -> None:
        self._known = {}
        with self.rt.db.read() as s:
            for case_id, audience in s.execute(select(KnownCase.case_id, KnownCase.audience)):
                self._remember(case_id, audience)

    def pass_over(self, event: Event, seq: int) -> bool:
        """Would on_event change nothing (Bus.consume then acknowledges it without the handler)? It does
        for an invitation answer, a registration's details or a wider audience of a case the centre
        shares, and a case it comes to share."""
        known = self._known.get(event.case_id)
        if event.type == ledger.JOINT_INVITATION_ANSWERED:
            return False
        if known is None:
            return self.rt.agency not in event.audience
        return event.type != ledger.REGISTERED and known.issuperset(event.audience)

    async def consume(self) -> None:
        await asyncio.to_thread(self._load_known)
        await self.rt.bus.consume(self.consumer, self.handle, self.rt.stop, pass_over=self.pass_over,
                                  together=self.together, linger=PROJECTION_LINGER_S)

    async def dispatch(self) -> None:
        wake = self.rt.relay.on_published()  # a session's invitations go out once its event is on the bus
        self.rt.db.on_commit(lambda s: wake.ring() if s.info.get(handlers.TICKETS_WAITING) else None)
        retries = next_retry(self.rt.db, InvitationOut.next_try_at, InvitationOut.delivery == "pending")
        await wakeup.dispatch("joint reception dispatcher", self._round, retries, wake, self.rt.stop)

    async def _round(self) -> bool:
        """Tickets whose case has reached the ledger are announced; invitations due are delivered."""
        try:
            announced = await self.rt.db.run_async(lambda s: handlers.announce_tickets(s, self.ctx))
        except handlers.TicketRaced:
            return True  # served while being announced: the next round announces both
        due = await self.rt.db.run_async(handlers.due_invitations)
        await asyncio.gather(*(self._deliver(inv.agency, sess) for inv, sess in due))
        return bool(announced or due)

    async def _deliver(self, agency: str, sess) -> None:
        centre = self.ctx.require_centre()
        req = pb.InviteRequest(session_id=sess.id, case_id=sess.case_id, centre=self.rt.agency,
                               centre_name=centre.name, title=sess.title, category=sess.category or "其他",
                               division=sess.division or "", agenda=sess.agenda,
                               scheduled_at=handlers.aware(sess.scheduled_at).isoformat(), place=sess.place,
                               invited=sess.invited, audience=sess.audience)
        try:
            entry = self.rt.directory.get(agency)
            addr = entry.grpc.get("joint_reception") if entry else None
            if not addr:
                raise ConnectionError(f"{agency} 没有联合接访服务地址 (no joint_reception address in the directory)")
            ch = self.rt.channels.get(addr)
            reply = await pb_grpc.JointReceptionServiceStub(ch).Invite(
                req, timeout=self.ctx.cfg.offer_timeout_s,
                metadata=rpc.call_metadata(self.rt.agency, sess.opened_by, "clerk"))
            answer = _ANSWERS.get(reply.answer, "pending")
            await self.rt.db.run_async(lambda s: handlers.invitation_delivered(
                s, sess.id, agency, answer, reply.reason or None))
        except Exception as e:  # invited node down or slow: the invitation stays owed and is retried
            error = f"{e.code().name}: {e.details()}" if isinstance(e, grpc.aio.AioRpcError) else str(e)
            log.info("invitation %s → %s not delivered: %s", sess.id, agency, error)
            await self.rt.db.run_async(lambda s: handlers.invitation_failed(s, sess.id, agency, error))
