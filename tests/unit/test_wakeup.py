"""Wake-ups of the background loops (shared/wakeup.py): a ring from another thread (where units of work
commit) wakes the waiting task; a dispatcher sleeps until rung or its next retry is due, and looks again
at once while it finds work; joint reception marks the unit of work that should wake its dispatcher."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table

from services.joint_reception import SERVICE_DIR as JOINT_RECEPTION, handlers as joint_reception
from services.joint_reception.adapters.orm import Ticket
from shared import wakeup
from shared.bus.envelope import Event
from shared.db.migrations import upgrade_head
from shared.db.plumbing import next_retry
from shared.db.session import Database
from shared.wakeup import IDLE_S, Wakeup, seconds_until
from tests.support import calls_into


def test_a_ring_from_another_thread_wakes_the_waiting_task():
    async def run():
        w = Wakeup()
        unrung = await w.wait(0.05)
        threading.Timer(0.1, w.ring).start()  # (as the SQLite writer thread does after a commit)
        rung = await w.wait(30)
        still_set = w.is_set()
        w.clear()
        return unrung, rung, still_set, w.is_set()

    assert asyncio.run(run()) == (False, True, True, False)


def test_rings_while_rung_send_nothing_more_to_the_event_loop_and_a_ring_after_a_clear_wakes_again():
    async def run():
        w = Wakeup()
        await w.wait(0)  # the waiter's loop is known from here on
        sent = calls_into(asyncio.get_running_loop())
        for _ in range(5):  # five commits from the writer thread before the waiter runs
            await asyncio.to_thread(w.ring)
        first = await w.wait(30)
        w.clear()
        await asyncio.to_thread(w.ring)  # a commit after the waiter cleared: must wake it again
        second = await w.wait(30)
        return sum(1 for _, callback in sent if callback == w._event.set), first, second

    assert asyncio.run(run()) == (2, True, True)


def test_seconds_until_a_retry_is_due_are_bounded_by_the_idle_poll():
    now = datetime.now(timezone.utc)
    assert seconds_until(None) == IDLE_S
    assert seconds_until(now - timedelta(seconds=3)) == 0
    assert seconds_until(now + timedelta(hours=1)) == IDLE_S
    assert 1.0 < seconds_until(now + timedelta(seconds=2)) <= 2.0
    # SQLite gives naive UTC back
    assert 1.0 < seconds_until((now + timedelta(seconds=2)).replace(tzinfo=None)) <= 2.0


def test_a_dispatcher_looks_again_while_busy_and_otherwise_sleeps_until_rung(monkeypatch):
    monkeypatch.setattr(wakeup, "IDLE_S", 60)  # only a ring (or a due retry) can end its sleep
    monkeypatch.setattr(wakeup, "ERROR_PAUSE_S", 0.01)

    async def run():
        stop, w, rounds = asyncio.Event(), Wakeup(), []
        outcomes = iter([True, True, False, RuntimeError("database is locked"), True, True])

        async def one_round():
            outcome = next(outcomes)
            rounds.append(outcome)
            if isinstance(outcome, Exception):
                raise outcome
            if len(rounds) == 6:
                stop.set()  # (the loop ends when it next looks)
            return outcome

        async def next_due(began):
            return None

        task = asyncio.create_task(wakeup.dispatch("test dispatcher", one_round, next_due, w, stop))
        for _ in range(200):  # the busy rounds, the idle one, then it sleeps
            await asyncio.sleep(0.01)
        asleep_after = len(rounds)
        w.ring()  # a failing round pauses briefly, then the loop goes on by itself
        await asyncio.wait_for(task, timeout=10)
        return asleep_after, len(rounds)

    asleep_after, total = asyncio.run(run())
    assert asleep_after == 3  # True, True (at once), False: then asleep until rung
    assert total == 6


def test_a_dispatcher_wakes_when_its_next_retry_is_due(monkeypatch):
    monkeypatch.setattr(wakeup, "IDLE_S", 60)

    async def run():
        stop, rounds = asyncio.Event(), []

        async def one_round():
            rounds.append(1)
            if len(rounds) == 2:
                stop.set()
            return False

        async def next_due(began):
            return datetime.now(timezone.utc) + timedelta(seconds=0.2)

        await asyncio.wait_for(wakeup.dispatch("test dispatcher", one_round, next_due, Wakeup(), stop), timeout=10)
        return len(rounds)

    assert asyncio.run(run()) == 2


def test_a_retry_that_falls_due_while_a_round_looks_is_taken_by_the_next_round_at_once(tmp_path, monkeypatch):
    """The round finds the delivery not yet due, and by the time the dispatcher asks when the next one is
    due, it has fallen due: asked for retries due after *now*, nothing was found and the dispatcher slept
    IDLE_S (an offer to a node that was down waited that long: test_target_down_during_offer hung)."""
    monkeypatch.setattr(wakeup, "IDLE_S", 60)
    db = Database(f"sqlite:///{tmp_path / 'retries.db'}")
    meta = MetaData()
    owed = Table("owed", meta, Column("id", Integer, primary_key=True), Column("status", String(10)),
                 Column("next_try_at", DateTime(timezone=True)))
    meta.create_all(db.engine)

    async def run():
        stop, rounds, w = asyncio.Event(), [], Wakeup()
        retries = next_retry(db, owed.c.next_try_at, owed.c.status == "pending")

        async def one_round():
            rounds.append(datetime.now(timezone.utc))
            if len(rounds) == 1:  # nothing due yet; one falls due while the round is still busy
                await db.run_async(lambda s: s.execute(owed.insert().values(
                    status="pending", next_try_at=datetime.now(timezone.utc) + timedelta(seconds=0.05))))
                await asyncio.sleep(0.1)
            else:
                stop.set()
                w.ring()  # (so that the loop ends now, not after its idle sleep)
            return False

        await asyncio.wait_for(wakeup.dispatch("test dispatcher", one_round, retries, w, stop), timeout=30)
        return rounds

    try:
        rounds = asyncio.run(run())
    finally:
        db.dispose()
    assert len(rounds) == 2 and (rounds[1] - rounds[0]).total_seconds() < 5  # not IDLE_S later


def test_joint_reception_wakes_its_dispatcher_when_a_waiting_tickets_case_arrives(tmp_path):
    """A ticket issued before the centre knew its case can be announced once the case arrives: that unit
    of work is marked (its commit wakes the dispatcher) — so is one learning a case no ticket waits for
    (on PostgreSQL a ticket committed meanwhile is unseen by the unit); an event of a known case is not."""
    url = f"sqlite:///{tmp_path / 'joint.db'}"
    upgrade_head(JOINT_RECEPTION, url)
    db = Database(url)
    marked = []
    db.on_commit(lambda s: marked.append(bool(s.info.get(joint_reception.TICKETS_WAITING))))
    now = datetime.now(timezone.utc)
    db.run(lambda s: s.add(Ticket(id="T1", day=now.date().isoformat(), number="R001", topic="养老保险",
                                  category="劳动社保", window_id="rsj", window_agency="510104-rsj", case_id="C-WAIT",
                                  persons=1, collective=False, status="waiting", issued_by="clerk", issued_at=now,
                                  announced=False)))
    ctx = SimpleNamespace(agency="510104-xfj")
    for case_id in ("C-WAIT", "C-NONE", "C-NONE"):
        ev = Event(case_id=case_id, type="case.registered", agency="510104-xfj", actor="clerk", audience=[ctx.agency],
                   payload={"title": "t", "division": "510104", "category": "劳动社保"})
        db.run(lambda s, ev=ev: joint_reception.on_event(s, ctx, ev))
    db.dispose()
    # the ticket itself (not issued through issue_ticket), C-WAIT, C-NONE learnt, C-NONE known already
    assert marked == [False, True, True, False]
