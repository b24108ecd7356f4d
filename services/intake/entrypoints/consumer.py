"""Projection consumer: the node's durable JetStream consumer folds ledger events into its read model."""
from __future__ import annotations

import asyncio

from services.intake import handlers
from shared.bus.envelope import Event
from shared.runtime import ServiceRuntime


class Projector:
    def __init__(self, rt: ServiceRuntime):
        self.rt = rt

    def _apply(self, event: Event, seq: int | None, backfill: bool = False) -> bool:
        return self.rt.db.run(lambda s: handlers.project_event(s, self.rt.agency, event, seq, backfill))

    async def handle(self, event: Event, seq: int) -> None:
        if await asyncio.to_thread(self._apply, event, seq):
            return
        # This node has just come to share the case: fetch the case's whole history, in ledger order.
        for past, past_seq in await self.rt.bus.history(event.case_id):
            await asyncio.to_thread(self._apply, past, past_seq, True)

    async def run(self) -> None:
        await self.rt.bus.consume(f"projection-{self.rt.agency}", self.handle, self.rt.stop)
