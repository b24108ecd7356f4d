"""shared.bus.folding.Folding against a real SQLite file and a real nats-server: a pulled batch is folded
in units of work of at most PER_UNIT events, and a case the node comes to share in the middle of a batch
has its history read from the ledger and folded before that case's later events."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from sqlalchemy import Column, Integer, MetaData, String, Table, select

from shared.bus.envelope import Event
from shared.bus.folding import Folding
from shared.bus.jetstream import Bus
from shared.config import BusConfig
from shared.db.session import PER_UNIT, Database

folded = Table("folded", MetaData(), Column("case_id", String, primary_key=True), Column("n", Integer, primary_key=True))


def _event(case: str, n: int) -> Event:
    return Event(case_id=case, type="test.step", agency="510104-xfj", actor="t", payload={"n": n}, audience=[])


class Projection:
    """A read model of (case, n) rows. An event after a case's first (n > 0) of a case not yet folded
    means the history is missing; folding is idempotent. Records each fold and the unit it ran in."""

    def __init__(self):
        self.calls: list[tuple[str, int, bool]] = []
        self.units: list[object] = []  # the session of each fold (kept, so each unit's is distinct)
        self.learned: list[str] = []

    def fold(self, s, ev: Event, seq: int | None, backfill: bool) -> bool:
        self.calls.append((ev.case_id, ev.payload["n"], backfill))
        self.units.append(s)
        rows = {n for (n,) in s.execute(select(folded.c.n).where(folded.c.case_id == ev.case_id))}
        if not rows and ev.payload["n"] > 0 and not backfill:
            return False
        if ev.payload["n"] not in rows:
            s.execute(folded.insert(), {"case_id": ev.case_id, "n": ev.payload["n"]})
        return True


async def _folding(url: str, db_path, events: list[Event]) -> tuple[Folding, Projection, Database, Bus, dict]:
    bus = Bus(BusConfig(url=url), "test")
    await bus.connect(asyncio.Event())
    seqs = {ev.id: await bus.publish(ev.subject, ev.to_json().encode(), {"Nats-Msg-Id": ev.id}) for ev in events}
    db = Database(f"sqlite:///{db_path}")
    folded.metadata.create_all(db.engine)
    projection = Projection()
    folding = Folding(SimpleNamespace(db=db, bus=bus), projection.fold, applied=bool,
                      learn=lambda ev, applied: projection.learned.append(ev.id))
    return folding, projection, db, bus, seqs


def _fold_batch(url: str, db_path, ledger: list[Event], batch: list[Event]) -> tuple[Projection, list]:
    """Put `ledger` on the bus and fold `batch` (some of its events) together: the projection, and the
    (case, n) rows stored."""
    async def scenario():
        folding, projection, db, bus, seqs = await _folding(url, db_path, ledger)
        await folding.together([(ev, seqs[ev.id]) for ev in batch])
        with db.read() as s:
            stored = sorted(s.execute(select(folded.c.case_id, folded.c.n)).all())
        await bus.close()
        db.dispose()
        return projection, stored

    return asyncio.run(scenario())


def test_a_case_shared_mid_batch_has_its_history_folded_while_the_other_cases_go_on(nats, tmp_path):
    a0, a1, b0, b1 = _event("C-A", 0), _event("C-A", 1), _event("C-B", 0), _event("C-B", 1)
    # A0 was passed over (not shared then); A1 makes the case shared: its history is missing
    projection, stored = _fold_batch(nats.url, tmp_path / "fold.db", [a0, a1, b0, b1], [a1, b0, b1])
    # A1 finds A's history missing: B goes on in the same unit, then A's history is folded in a unit of its own
    assert projection.calls == [("C-A", 1, False), ("C-B", 0, False), ("C-B", 1, False),
                                ("C-A", 0, True), ("C-A", 1, True)]
    assert stored == [("C-A", 0), ("C-A", 1), ("C-B", 0), ("C-B", 1)]
    units = [id(unit) for unit in projection.units]
    assert units[0] == units[1] == units[2] and units[3] == units[4] and units[0] != units[3]
    assert projection.learned == [a1.id, b0.id, b1.id, a0.id, a1.id]  # every fold's result, once durable


def test_cases_shared_in_one_batch_have_their_histories_read_together_and_their_later_events_wait(nats, tmp_path):
    """Two cases shared mid-batch: one unit for the batch (each case's later event held back behind its
    missing history), one for both histories, one for the events held back — not two units a case."""
    a0, a1, a2, b0, b1, b2, c0 = (_event("C-A", 0), _event("C-A", 1), _event("C-A", 2), _event("C-B", 0),
                                  _event("C-B", 1), _event("C-B", 2), _event("C-C", 0))
    # (A2 and B2 are on the ledger when the histories are read: folded with them, and again — changing
    # nothing — when their turn in the batch comes)
    projection, stored = _fold_batch(nats.url, tmp_path / "fold.db", [a0, b0, a1, b1, c0, a2, b2],
                                     [a1, b1, a2, c0, b2])
    assert stored == [("C-A", 0), ("C-A", 1), ("C-A", 2), ("C-B", 0), ("C-B", 1), ("C-B", 2), ("C-C", 0)]
    units: dict[int, list] = {}
    for call, unit in zip(projection.calls, projection.units):
        units.setdefault(id(unit), []).append(call)
    assert list(units.values())[0] == [("C-A", 1, False), ("C-B", 1, False), ("C-C", 0, False)]
    assert sorted(list(units.values())[1]) == [("C-A", 0, True), ("C-A", 1, True), ("C-A", 2, True),
                                               ("C-B", 0, True), ("C-B", 1, True), ("C-B", 2, True)]
    assert list(units.values())[2:] == [[("C-A", 2, False), ("C-B", 2, False)]]


def test_a_batch_is_folded_in_units_of_per_unit_events(nats, tmp_path):
    events = [_event(f"C-{i}", 0) for i in range(2 * PER_UNIT + 6)]
    projection, stored = _fold_batch(nats.url, tmp_path / "fold.db", events, events)
    sizes: dict[int, int] = {}
    for unit in projection.units:
        sizes[id(unit)] = sizes.get(id(unit), 0) + 1
    assert list(sizes.values()) == [PER_UNIT, PER_UNIT, 6]
    assert len(stored) == len(events)
