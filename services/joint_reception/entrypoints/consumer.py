"""The centre's durable consumer (which cases it shares, invitation answers) and its dispatcher: tickets'
case events once the case is on the ledger, and invitations delivered over gRPC, retried until the
invited node answers — a node that is down during the invitation gets it after restart."""
from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from sqlalchemy import select

from services.joint_reception import handlers
from services.joint_reception.adapters.orm import KnownCase
from shared import ledger, rpc
from shared.bus.envelope import Event
from shared.pb import joint_reception_pb2 as pb
from shared.pb import joint_reception_pb2_grpc as pb_grpc
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
POLL_S = 0.25  # tickets whose case has reached the ledger, and retries of invitations, are found by this poll
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
        # idempotent: a replay changes nothing
        audience = await self.rt.db.run_async(lambda s: handlers.on_event(s, self.ctx, event))
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
        await self.rt.bus.consume(self.consumer, self.handle, self.rt.stop, pass_over=self.pass_over)

    async def dispatch(self) -> None:
        published = self.rt.relay.on_published()  # a session's invitations go out once its event is on the bus
        while not self.rt.stop.is_set():
            published.clear()
            busy = False
            try:
                if await self.rt.db.run_async(lambda s: handlers.announce_tickets(s, self.ctx)):
                    busy = True
                    self.rt.relay.notify()
                due = await self.rt.db.run_async(handlers.due_invitations)
                busy = busy or bool(due)
                await asyncio.gather(*(self._deliver(inv.agency, sess) for inv, sess in due))
            except handlers.TicketRaced:
                busy = True  # served while being announced: the next round announces both
            except Exception as e:
                log.warning("joint reception dispatcher: %s", e)
            if busy:
                await asyncio.sleep(0.1)
                continue
            with contextlib.suppress(asyncio.TimeoutError):  # tickets, retries: found by polling
                await asyncio.wait_for(published.wait(), timeout=POLL_S)

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
