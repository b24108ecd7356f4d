"""Routing's durable consumer and the offer dispatcher (delivers 交办 over gRPC, retrying)."""
from __future__ import annotations

import asyncio
import logging

from services.routing import handlers
from services.routing.adapters.orm import OfferOut
from shared import ledger, rpc, telemetry, wakeup
from shared.bus.envelope import Event, events_filter
from shared.db.plumbing import next_retry
from shared.pb import assignment_pb2, assignment_pb2_grpc
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)
REACTIONS = {ledger.REGISTERED: handlers.on_registered, ledger.RETURNED: handlers.on_returned}


class RoutingWorker:
    def __init__(self, rt: ServiceRuntime, ctx: handlers.RoutingContext):
        self.rt, self.ctx = rt, ctx
        self.consumer = f"routing-{rt.agency}"
        # rung when the relay has published: a staged 交办 is delivered then (retries when they are due)
        self._offers_due = rt.relay.on_published()

    async def handle(self, event: Event, seq: int) -> None:
        # one event at a time: the consume span is the event's own, so the 交办 it leads to continues
        # the petition's trace (a batch's span would start a trace of its own)
        await self.rt.react_once(self.consumer, event.id, lambda s: REACTIONS[event.type](s, self.ctx, event))

    async def consume(self) -> None:
        # The server sends only what routing reacts to (its subject filters): this node's own registrations
        # (首问负责: only the receiving node routes) and returns. The kind in a subject is the envelope's:
        # Bus terminates an event whose envelope does not match its subject.
        subjects = events_filter([ledger.REGISTERED], self.rt.agency) + events_filter([ledger.RETURNED])
        await self.rt.bus.consume(self.consumer, self.handle, self.rt.stop, subjects=subjects)

    async def dispatch(self) -> None:
        retries = next_retry(self.rt.db, OfferOut.next_try_at, OfferOut.status == "pending")
        await wakeup.dispatch("offer dispatcher", self._offer_round, retries, self._offers_due, self.rt.stop)

    async def _offer_round(self) -> bool:
        due = await self.rt.db.run_async(handlers.due_offers)
        answered = await asyncio.gather(*(self._deliver(o.case_id, o.attempt, o.target, rc, trace)
                                          for o, rc, trace in due))
        delivered = [(o.case_id, o.attempt) for (o, _, _), ok in zip(due, answered) if ok]
        # one unit of work for the round's answered offers (should it fail, they are offered again: the
        # target answers a repeated case and attempt as before)
        if delivered:
            await self.rt.db.run_async(lambda s: handlers.offers_delivered(s, delivered))
        # Only a full batch may have left offers due. One that came due meanwhile rang the wake-up (its
        # event was published) or is a retry the next-retry query finds: looking again at once found
        # nothing but cost a unit of work per round.
        return len(due) == handlers.DUE_BATCH

    async def _deliver(self, case_id: str, attempt: int, target: str, rc, trace: dict) -> bool:
        with telemetry.tracer().start_as_current_span("AssignmentService/Offer call", context=telemetry.extract(trace),
                                                      kind=telemetry.trace.SpanKind.CLIENT):
            return await self._offer(case_id, attempt, target, rc)

    async def _offer(self, case_id: str, attempt: int, target: str, rc) -> bool:
        """交办 to the target node: True once it answered; else the failed try is recorded (retried later)."""
        entry = self.rt.directory.get(target)
        decision = rc.decisions[-1]
        req = assignment_pb2.OfferRequest(case_id=case_id, from_agency=self.rt.agency, attempt=attempt,
                                          category=rc.category or "其他", division=rc.division, title=rc.title,
                                          audience=rc.audience, rule=decision["rule"], reason=decision["reason"],
                                          skipped_level="skipped_level" in decision["flags"])
        try:
            ch = self.rt.channels.get(entry.grpc["routing"])
            await assignment_pb2_grpc.AssignmentServiceStub(ch).Offer(
                req, timeout=self.ctx.cfg.offer_timeout_s, metadata=rpc.call_metadata(self.rt.agency, "routing",
                                                                                      "handler"))
            return True
        except Exception as e:  # target down or slow: 首问 node keeps the case; retry with backoff
            reason = str(e)
            await self.rt.db.run_async(lambda s: handlers.offer_failed(s, self.ctx, case_id, attempt, reason))
            return False
