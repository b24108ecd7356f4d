"""Transactional outbox: stage an event in the caller's transaction; the relay publishes it after commit
(a commit that staged events wakes it: no caller has to remember to)."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from shared import telemetry
from shared.bus.envelope import Event
from shared.bus.jetstream import Bus
from shared.db.base import utcnow
from shared.db.plumbing import OutboxRow
from shared.db.prepared import Prepared
from shared.db.session import Database
from shared.wakeup import IDLE_S, Wakeup

log = logging.getLogger(__name__)


# Statements built once: an ORM object's flush cost more than the insert, and on every relay the ORM's
# objects cost more than the read; staging runs with every event, prepared (shared/db/prepared.py)
_ROWS = OutboxRow.__table__
_STAGE = Prepared(_ROWS.insert())
_MARK = Prepared(_ROWS.update().where(_ROWS.c.seq == bindparam("the_seq")))  # (executemany: one row a set)
_PENDING = (select(_ROWS.c.seq, _ROWS.c.subject, _ROWS.c.data, _ROWS.c.headers)
            .where(_ROWS.c.published_at.is_(None)).order_by(_ROWS.c.seq).limit(bindparam("batch")))
STAGED = "lianfang_staged_events"  # Session.info key: the unit of work staged events (wake the relay on commit)


def stage(s: Session, event: Event) -> Event:
    """Write the event into the outbox in the current transaction, with the current trace context."""
    event = replace(event, trace=event.trace or telemetry.inject())
    _STAGE.run(s, dict(event_id=event.id, subject=event.subject, data=event.to_json(),
                       headers={"Nats-Msg-Id": event.id, **event.trace}, created_at=utcnow()))
    s.info[STAGED] = True
    return event


class OutboxRelay:
    """Publishes committed outbox rows in order; a row is marked only after JetStream acknowledged it."""

    def __init__(self, db: Database, bus: Bus, batch: int = 200):
        self.db, self.bus, self.batch = db, bus, batch
        self._wake = Wakeup()
        self._published: list[Wakeup] = []
        db.on_commit(lambda s: self._wake.ring() if s.info.get(STAGED) else None)

    def on_published(self) -> Wakeup:
        """Rung each time rows were published: a dispatcher that may call another node only once its
        event is on the bus (an offer, a referral, an invitation) waits on it instead of polling."""
        self._published.append(wakeup := Wakeup())
        return wakeup

    def _pending(self):
        """The oldest unpublished rows: (seq, subject, data, headers)."""
        with self.db.read() as s:
            return s.execute(_PENDING, {"batch": self.batch}).all()

    async def _mark(self, seqs: list[int]) -> None:
        at = utcnow()
        await self.db.run_async(lambda s: _MARK.run(s, [{"the_seq": seq, "published_at": at} for seq in seqs]))

    async def relay_once(self) -> int:
        rows = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        # Published concurrently on one connection: they leave in order, so the stream keeps that order.
        await asyncio.gather(*(self._publish(r) for r in rows))
        await self._mark([r.seq for r in rows])
        for wakeup in self._published:
            wakeup.ring()
        return len(rows)

    async def _publish(self, row) -> int:
        """One producer span per event, continuing the trace it was staged in; the message's headers carry
        the span's context, so the consumers' spans hang off this publish (the bus hop of the trace)."""
        with telemetry.tracer().start_as_current_span(f"publish {json.loads(row.data).get('type', '')}",
                                                      context=telemetry.extract(row.headers),
                                                      kind=telemetry.trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.destination.name", row.subject)
            return await self.bus.publish(row.subject, row.data.encode(), {**row.headers, **telemetry.inject()})

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._wake.clear()  # (a commit while relaying rings again: the wait below returns at once)
            try:
                # only a full batch may have left rows; a commit that staged more while this one was
                # relayed rang the wake-up, so the wait below returns at once
                if await self.relay_once() >= self.batch:
                    continue
            except Exception as e:  # bus down or slow: the rows stay and are retried
                log.warning("outbox relay: %s", e)
                await asyncio.sleep(1)
                continue
            await self._wake.wait(IDLE_S)  # (rows staged by another process are found by this poll)
