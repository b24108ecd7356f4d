"""Folding ledger events into a node's read model (a projection), one event at a time or a pulled batch
at once.

One event, one unit of work is what Bus.consume's handler does. Under load that is mostly overhead: a
unit's begin, savepoint and commit cost about as much CPU as the fold itself (`python -m tests.bench.folds`).
A pulled batch folded in units of up to PER_UNIT events (Bus.consume's `together`) pays it once."""
from __future__ import annotations

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
        """Bus.consume's `together`: a batch, in ledger order. A unit of work ends early after an event
        whose case's history is missing; that history is folded (in units of its own) before the next event."""
        while events:
            folded, history_missing = await self._fold_unit(events[:PER_UNIT], backfill=False)
            events = events[folded:]
            if history_missing:
                history = await self.rt.bus.history(*history_missing)
                while history:
                    folded, _ = await self._fold_unit(history[:PER_UNIT], backfill=True)
                    history = history[folded:]

    async def _fold_unit(self, events: list[tuple[Event, int]], backfill: bool) -> tuple[int, tuple[str, int] | None]:
        """One unit of work: the events in order, up to the first whose case's history is missing. Returns
        how many were folded and, if any, that case with the stream sequence of its event."""
        results = await self.rt.db.run_async(lambda s: self._fold_until_history_missing(s, events, backfill))
        for (event, _), result in zip(events, results):
            self.learn(event, result)
        event, seq = events[len(results) - 1]
        return len(results), (None if self.applied(results[-1]) else (event.case_id, seq))

    def _fold_until_history_missing(self, s: Session, events: list[tuple[Event, int]], backfill: bool) -> list:
        results = []
        for event, seq in events:
            results.append(self.fold(s, event, seq, backfill))
            if not self.applied(results[-1]):
                break
        return results
