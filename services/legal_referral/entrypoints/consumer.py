"""Legal-referral's durable consumer (reacts to the ledger) and the referral dispatcher (delivers
移送 and 救助申请 over gRPC to the receiving body's LegalReferralService, retrying with backoff)."""
from __future__ import annotations

import asyncio
import logging

from services.legal_referral import handlers
from services.legal_referral.adapters.orm import ReferralOut
from shared import ledger, rpc, wakeup
from shared.bus.envelope import Event, events_filter
from shared.db.plumbing import next_retry
from shared.pb import referral_pb2, referral_pb2_grpc
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
OWN_ONLY = {ledger.REGISTERED: handlers.on_registered, ledger.LEGAL_HANDOVER: handlers.on_handover}
REACTIONS = {**OWN_ONLY,
             ledger.REFERRAL_ACCEPTED: handlers.on_referral_accepted,
             ledger.REFERRAL_DECLINED: handlers.on_referral_declined,
             ledger.REFERRAL_FILED: handlers.on_referral_progress,
             ledger.REFERRAL_DECIDED: handlers.on_referral_progress,
             ledger.REFERRAL_WITHDRAWN: handlers.on_referral_progress,
             ledger.REFERRED: handlers.on_referred,
             ledger.RELIEF_REQUESTED: handlers.on_relief_event,
             ledger.RELIEF_RECEIVED: handlers.on_relief_event,
             ledger.RELIEF_DECIDED: handlers.on_relief_event}
_KINDS = {handlers.CHANNEL: referral_pb2.ReferRequest.CHANNEL, handlers.RELIEF: referral_pb2.ReferRequest.RELIEF}


class LegalWorker:
    def __init__(self, rt: ServiceRuntime, ctx: handlers.LegalContext):
        self.rt, self.ctx = rt, ctx
        self.consumer = f"legal-referral-{rt.agency}"

    async def handle(self, event: Event, seq: int) -> None:
        # one event at a time: the consume span is the event's own, so the 移送 it leads to continues
        # the petition's trace (a batch's span would start a trace of its own)
        await self.rt.react_once(self.consumer, event.id, lambda s: REACTIONS[event.type](s, self.ctx, event))

    async def consume(self) -> None:
        # The server sends only what legal referral reacts to (its subject filters): REACTIONS, those of
        # OWN_ONLY published by this node. (Bus terminates an event whose envelope does not match its subject.)
        subjects = events_filter(OWN_ONLY, self.rt.agency) + events_filter(REACTIONS.keys() - OWN_ONLY.keys())
        await self.rt.bus.consume(self.consumer, self.handle, self.rt.stop, subjects=subjects)

    async def dispatch(self) -> None:
        # a staged 移送 is delivered once the relay has published it (retries when they are due)
        retries = next_retry(self.rt.db, ReferralOut.next_try_at, ReferralOut.status == "pending")
        await wakeup.dispatch("referral dispatcher", self._referral_round, retries, self.rt.relay.on_published(),
                              self.rt.stop)

    async def _referral_round(self) -> bool:
        due = await self.rt.db.run_async(handlers.due_referrals)
        await asyncio.gather(*(self._deliver(o.ref_id, o.target, o.request) for o in due))
        return bool(due)

    async def _deliver(self, ref_id: str, target: str, r: dict) -> None:
        req = referral_pb2.ReferRequest(
            ref_id=r["ref_id"], case_id=r["case_id"], from_agency=r["from_agency"], attempt=r["attempt"],
            kind=_KINDS[r["kind"]], channel=r["channel"], channel_label=r["channel_label"], category=r["category"],
            division=r["division"], title=r["title"], rule=r["rule"], reasons=r["reasons"], audience=r["audience"],
            reported_agency=r["reported_agency"])
        if r.get("relief"):
            req.relief.CopyFrom(referral_pb2.Relief(**r["relief"]))
        try:
            entry = self.rt.directory.get(target)
            addr = entry.grpc.get("legal_referral") if entry else None
            if not addr:
                raise LookupError(f"{target} has no legal_referral gRPC address in the directory")
            ch = self.rt.channels.get(addr)
            await referral_pb2_grpc.LegalReferralServiceStub(ch).Refer(
                req, timeout=self.ctx.cfg.offer_timeout_s,
                metadata=rpc.call_metadata(self.rt.agency, "legal_referral", "handler"))
            await self.rt.db.run_async(lambda s: handlers.referral_delivered(s, ref_id))
        except Exception as e:  # receiving node down or slow: the referring node keeps the case; retry
            log.info("referral %s to %s not delivered: %s", ref_id, target, e)
            reason = str(e)
            await self.rt.db.run_async(lambda s: handlers.referral_failed(s, self.ctx, ref_id, reason))
