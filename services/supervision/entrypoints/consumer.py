"""The supervision projection (durable JetStream consumer) and the periodic 督查督办 checker."""
from __future__ import annotations

import asyncio
import logging
import uuid

from services.supervision import handlers
from shared import ledger
from shared.bus.envelope import Event
from shared.bus.folding import Folding
from shared.bus.jetstream import PROJECTION_LINGER_S
from shared.db.session import PER_UNIT
from shared.runtime import ServiceRuntime
from shared.sharing import NotShared
from shared.wakeup import IDLE_S

log = logging.getLogger(__name__)
DURABLE_PREFIX = "supervision"


class SupervisionWorker:
    def __init__(self, rt: ServiceRuntime, ctx: handlers.SupervisionContext, interval_s: float = IDLE_S):
        self.rt, self.ctx, self.interval_s = rt, ctx, interval_s
        self.durable: str | None = None
        self.ready = asyncio.Event()  # the projection has caught up with the ledger once
        self.not_shared = NotShared(rt.agency, audience_matters=False)
        self.folding = Folding(rt, lambda s, event, seq, backfill: handlers.project_event(s, ctx, event, seq, backfill),
                               applied=bool, learn=lambda event, applied: self.not_shared.learn(
                                   event.case_id, event.audience if applied == handlers.NOT_SHARED else None))

    # --- projection ---
    def pass_over(self, event: Event, seq: int) -> bool:
        """A case this node does not share (Bus.consume acknowledges it without the handler)."""
        if event.type == ledger.REGISTERED and self.rt.agency not in event.audience:
            self.not_shared.learn(event.case_id, event.audience)  # a new case, not shared with this node
            return True
        return self.not_shared.skip(event)

    async def consume(self) -> None:
        epoch = await self.rt.db.run_async(lambda s: handlers.durable_epoch(s, uuid.uuid4().hex[:12]))
        self.durable = f"{DURABLE_PREFIX}-{self.rt.agency}-{epoch}"
        self.rt.spawn(self._retire_stale_consumers())
        await self.rt.bus.consume(self.durable, self.folding.handle, self.rt.stop, pass_over=self.pass_over,
                                  together=self.folding.together, linger=PROJECTION_LINGER_S)

    async def _retire_stale_consumers(self) -> None:
        """A consumer of an earlier (wiped) database of this service would only pile up messages."""
        await self.rt.bus.connected.wait()
        try:
            for info in await self.rt.bus.js.consumers_info(self.rt.cfg.bus.stream):
                name = info.name
                if name.startswith(f"{DURABLE_PREFIX}-{self.rt.agency}-") and name != self.durable:
                    await self.rt.bus.js.delete_consumer(self.rt.cfg.bus.stream, name)
                    log.info("retired stale consumer %s", name)
        except Exception as e:  # best effort
            log.info("could not list or retire stale consumers: %s", e)

    async def _wait_caught_up(self, timeout_s: float = 30.0) -> None:
        """Before issuing notices, let the projection see what the ledger already holds, so a restarted or
        rebuilt service does not even try to issue a notice twice (the deterministic ids would drop it)."""
        await self.rt.bus.connected.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and not self.rt.stop.is_set():
            try:
                if self.durable:
                    info = await self.rt.bus.js.consumer_info(self.rt.cfg.bus.stream, self.durable)
                    if info.num_pending == 0 and info.num_ack_pending == 0:
                        break
            except Exception:
                pass  # the consumer is being created
            await asyncio.sleep(0.2)
        self.ready.set()

    # --- 督查督办 checker ---
    def _tick(self) -> int:
        now = self.ctx.checker_now()
        due = self.rt.db.run(lambda s: handlers.cases_to_check(s, self.ctx, ledger.local_date(now)))
        issued = 0
        for start in range(0, len(due), PER_UNIT):  # (a unit of work per case cost as much as the check)
            issued += self.rt.db.run(lambda s: sum(handlers.check_case(s, self.ctx, case_id, now)
                                                   for case_id in due[start:start + PER_UNIT]))
        return issued

    async def check(self) -> None:
        """Bounded periodic loop on this node: every interval, the cases it supervises that have something due."""
        await self._wait_caught_up()
        while not self.rt.stop.is_set():
            try:
                await asyncio.to_thread(self._tick)
            except Exception as e:
                log.warning("supervision checker: %s", e)
            try:
                await asyncio.wait_for(self.rt.stop.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
