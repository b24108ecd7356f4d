"""Folding ledger events into a node's read model (a projection), one event at a time or a pulled batch
at once.

One event, one unit of work is what Bus.consume's handler does. Under load that is mostly overhead: a
unit's begin, savepoint and commit cost about as much CPU as the fold itself (`python -m tests.bench.folds`).
A pulled batch folded in units of up to PER_UNIT events (Bus.consume's `together`) pays it once."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from sqlalchemy.orm import Session

from shared.bus.envelope import Event
from shared.db.session import PER_UNIT

Fold = Callable[[Session, Event, "int | None", bool], Any]  # (session, event, stream seq, backfill) → result


class Folding:
    """`fold` folds one event inside the caller's unit of work (idempotent: an event folded before
    changes nothing). `applied(result)` is False when the node has just come to share the event's case
    without its history: the case's whole history is then read from the ledger and folded with
    backfill=True. `learn(event, result)` runs once the result is durable (what the node remembers
    about cases it does not share, shared.sharing.NotShared)."""

    def __init__(self, rt, fold: Fold, applied: Callable[[Any], bool], learn: Callable[[Event, Any], None]):
        self.rt, self.fold, self.applied, self.learn = rt, fold, applied, learn

    async def handle(self, event: Event, seq: int) -> None:
        """Bus.consume's handler: one event (a batch of one)."""
        await self.together([(event, seq)])

    async def together(self, events: list[tuple[Event, int]]) -> None:
        """Bus.consume's `together`: a batch, in ledger order, in units of work of up to PER_UNIT events.
        An event whose case's history is missing holds back that case's later events while the unit goes
        on with the other cases; the missing histories are then read at once (concurrently) and folded
        together, and the events held back after them."""
        for start in range(0, len(events), PER_UNIT):
            part = events[start:start + PER_UNIT]
            while part:
                missing, part = await self._fold_unit(part)
                if missing:
                    histories = await asyncio.gather(*(self.rt.bus.history(case, seq) for case, seq in missing))
                    history = [event for h in histories for event in h]
                    for at in range(0, len(history), PER_UNIT):
                        await self._fold_unit(history[at:at + PER_UNIT], backfill=True)

    async def _fold_unit(self, events: list[tuple[Event, int]], backfill: bool = False
                         ) -> tuple[list[tuple[str, int]], list[tuple[Event, int]]]:
        """One unit of work. Returns the cases whose history turned out missing (with the stream sequence
        of the event that found it so) and the events held back behind them."""
        done, held, missing = await self.rt.db.run_async(lambda s: self._fold_around_missing(s, events, backfill))
        for event, result in done:
            self.learn(event, result)
        return missing, held

    def _fold_around_missing(self, s: Session, events: list[tuple[Event, int]], backfill: bool):
        """(event, result) of each event folded, the events held back, the cases whose history is missing.
        (A backfill folds every event: one that still finds its case missing has nothing to fold into.)"""
        done, held, missing, stalled = [], [], [], set()
        for event, seq in events:
            if event.case_id in stalled:
                held.append((event, seq))
                continue
            result = self.fold(s, event, seq, backfill)
            done.append((event, result))
            if not backfill and not self.applied(result):
                stalled.add(event.case_id)
                missing.append((event.case_id, seq))
        return done, held, missing
