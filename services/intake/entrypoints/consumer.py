"""Projection consumer: the node's durable JetStream consumer folds ledger events into its read model."""
from __future__ import annotations

from services.intake import handlers
from shared import ledger, metrics
from shared.bus.envelope import Event
from shared.bus.folding import Folding
from shared.bus.jetstream import PROJECTION_LINGER_S
from shared.runtime import ServiceRuntime
from shared.sharing import NotShared


class Projector:
    def __init__(self, rt: ServiceRuntime):
        self.rt = rt
        self.durable = f"projection-{rt.agency}"
        self.lag = metrics.consumer_lag(self.durable)  # /metrics: lianfang_consumer_lag_events
        self.not_shared = NotShared(rt.agency)
        self.folding = Folding(rt, lambda s, event, seq, backfill: handlers.fold_event(s, rt.agency, event, seq, backfill),
                               applied=lambda folded: folded.applied,
                               learn=lambda event, folded: self.not_shared.learn(event.case_id, folded.unshared))
        metrics.gauge("lianfang_breached_deadlines", "breached statutory deadlines (责任追究 records) on the cases "
                      "this node shares", self._breached)

    def _breached(self) -> int:
        with self.rt.db.read() as s:  # a plain read: a scrape never waits for the node's writers
            return handlers.count_breached_deadlines(s)

    def pass_over(self, event: Event, seq: int) -> bool:
        """A case this node only keeps the registration of (Bus.consume acknowledges it without the
        handler). 三级终结 reaches every desk's registrations (they decline repeats): never passed over."""
        if event.type != ledger.RE_REVIEW_DECIDED and self.not_shared.skip(event):
            self.lag.applied(seq)
            return True
        return False

    async def handle(self, event: Event, seq: int) -> None:
        await self.folding.handle(event, seq)
        self.lag.applied(seq)

    async def together(self, events: list[tuple[Event, int]]) -> None:
        await self.folding.together(events)
        self.lag.applied(events[-1][1])

    async def run(self) -> None:
        self.rt.spawn(metrics.watch_ledger(self.rt.bus, self.lag, self.rt.stop))
        await self.rt.bus.consume(self.durable, self.handle, self.rt.stop, pass_over=self.pass_over,
                                  together=self.together, linger=PROJECTION_LINGER_S)
