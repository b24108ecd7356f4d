"""Projection consumer: the node's durable JetStream consumer folds ledger events into its read model."""
from __future__ import annotations


from services.intake import handlers
from shared import ledger, metrics
from shared.bus.envelope import Event
from shared.runtime import ServiceRuntime
from shared.sharing import NotShared


class Projector:
    def __init__(self, rt: ServiceRuntime):
        self.rt = rt
        self.durable = f"projection-{rt.agency}"
        self.lag = metrics.consumer_lag(self.durable)  # /metrics: lianfang_consumer_lag_events
        self.not_shared = NotShared(rt.agency)
        metrics.gauge("lianfang_breached_deadlines", "breached statutory deadlines (责任追究 records) on the cases "
                      "this node shares", self._breached)

    def _breached(self) -> int:
        with self.rt.db.read() as s:  # a plain read: a scrape never waits for the node's writers
            return handlers.count_breached_deadlines(s)

    async def _apply(self, event: Event, seq: int | None, backfill: bool = False) -> bool:
        folded = await self.rt.db.run_async(lambda s: handlers.fold_event(s, self.rt.agency, event, seq, backfill))
        self.not_shared.learn(event.case_id, folded.unshared)
        return folded.applied

    def pass_over(self, event: Event, seq: int) -> bool:
        """A case this node only keeps the registration of (Bus.consume acknowledges it without the
        handler). 三级终结 reaches every desk's registrations (they decline repeats): never passed over."""
        if event.type != ledger.RE_REVIEW_DECIDED and self.not_shared.skip(event):
            self.lag.applied(seq)
            return True
        return False

    async def handle(self, event: Event, seq: int) -> None:
        if not await self._apply(event, seq):
            # This node has just come to share the case: fetch the case's whole history, in ledger order.
            for past, past_seq in await self.rt.bus.history(event.case_id):
                await self._apply(past, past_seq, True)
        self.lag.applied(seq)

    async def run(self) -> None:
        self.rt.spawn(metrics.watch_ledger(self.rt.bus, self.lag, self.rt.stop))
        await self.rt.bus.consume(self.durable, self.handle, self.rt.stop, pass_over=self.pass_over)
