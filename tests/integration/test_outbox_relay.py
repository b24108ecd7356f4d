"""The outbox relay against a real nats-server and a real SQLite file: committed events reach the stream
in the order they were staged, once, and the relay tells the dispatchers waiting on it (an offer may be
delivered only once its 交办 event is on the bus)."""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from shared.bus import outbox
from shared.bus.envelope import Event
from shared.bus.jetstream import Bus
from shared.config import BusConfig
from shared.db.plumbing import OutboxRow
from shared.db.session import Database


def test_relay_publishes_in_order_once_and_wakes_its_listeners(nats, tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    OutboxRow.__table__.create(db.engine)
    events = [Event(case_id="C-R", type="test.step", agency="510104-xfj", actor="t", payload={"n": i}, audience=[])
              for i in range(3)]

    async def run():
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        relay = outbox.OutboxRelay(db, bus)
        published = relay.on_published()
        try:
            assert await relay.relay_once() == 0 and not published.is_set()  # nothing staged: nobody woken
            db.run(lambda s: [outbox.stage(s, ev) for ev in events])
            first, again = await relay.relay_once(), await relay.relay_once()
            woken = published.is_set()
            history = [ev.payload["n"] for ev, _ in await bus.history("C-R")]
        finally:
            await bus.close()
        return first, again, woken, history

    first, again, woken, history = asyncio.run(run())
    assert (first, again) == (3, 0)
    assert woken
    assert history == [0, 1, 2]
    with db.read() as s:
        assert all(r.published_at is not None for r in s.scalars(select(OutboxRow)))
    db.dispose()


def test_a_commit_that_staged_events_wakes_the_relay(nats, tmp_path, monkeypatch):
    """No caller tells the relay: the commit does. (Its poll, a safety net, is put out of reach here.)"""
    monkeypatch.setattr(outbox, "IDLE_S", 600)
    db = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    OutboxRow.__table__.create(db.engine)
    event = Event(case_id="C-W", type="test.step", agency="510104-xfj", actor="t", payload={"n": 1}, audience=[])

    async def run():
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        relay = outbox.OutboxRelay(db, bus)
        published = relay.on_published()
        task = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(0.5)  # the relay has found nothing and sleeps
            await db.run_async(lambda s: outbox.stage(s, event))
            woken = await published.wait(30)
            history = [ev.id for ev, _ in await bus.history("C-W")]
        finally:
            stop.set()
            task.cancel()
            await bus.close()
        return woken, history

    woken, history = asyncio.run(run())
    assert woken
    assert history == [event.id]
    db.dispose()


def test_a_relay_that_took_a_full_batch_looks_again_at_once(nats, tmp_path, monkeypatch):
    """After a batch smaller than its limit the relay waits for a commit's wake-up; after a full one there
    may be more rows, which nothing will announce again: it looks at once (its poll is out of reach here)."""
    monkeypatch.setattr(outbox, "IDLE_S", 600)
    db = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    OutboxRow.__table__.create(db.engine)
    events = [Event(case_id="C-F", type="test.step", agency="510104-xfj", actor="t", payload={"n": i}, audience=[])
              for i in range(5)]
    db.run(lambda s: [outbox.stage(s, ev) for ev in events])  # staged before the relay runs: no wake-up

    async def run():
        bus, stop = Bus(BusConfig(url=nats.url), "test"), asyncio.Event()
        await bus.connect(stop)
        task = asyncio.create_task(outbox.OutboxRelay(db, bus, batch=2).run(stop))
        try:
            for _ in range(100):
                history = [ev.payload["n"] for ev, _ in await bus.history("C-F")]
                if len(history) == len(events):
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            task.cancel()
            await bus.close()
        return history

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]
    db.dispose()
