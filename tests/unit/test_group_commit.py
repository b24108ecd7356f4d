"""SQLite group commit (shared/db/session.py): concurrent units of work share one COMMIT, a failing one
undoes only its own writes, and nobody is answered before the commit is durable."""
from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, text

from shared.db.session import BACKGROUND, Database
from tests.support import calls_into


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'g.db'}")
    with d.unit_of_work() as s:
        s.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield d
    d.dispose()


def names(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(text("SELECT name FROM item")))


class Blocker:
    """A unit of work that holds the writer until its gate opens: what is submitted meanwhile queues."""

    def __init__(self):
        self.gate, self.started = threading.Event(), threading.Event()

    def __call__(self, s):
        self.started.set()
        self.gate.wait(5)


def insert(name: str):
    return lambda s: s.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": name}).rowcount


def test_concurrent_units_share_commits_and_a_failure_undoes_only_itself(db):
    commits = []
    event.listen(db.engine, "commit", lambda conn: commits.append(1))
    gate = threading.Barrier(40)

    def work(i: int):
        def unit(s):
            s.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": f"ok-{i}"})
            if i % 10 == 3:  # writes, then fails: its row must not survive
                s.execute(text("INSERT INTO item (name) VALUES (:n)"), {"n": f"doomed-{i}"})
                raise ValueError(f"bad input {i}")
            return i * 2
        gate.wait()
        return db.run(unit)

    with ThreadPoolExecutor(40) as pool:
        futures = {i: pool.submit(work, i) for i in range(40)}
    failed = {i for i, f in futures.items() if f.exception() is not None}

    assert failed == {3, 13, 23, 33}
    assert all(str(futures[i].exception()) == f"bad input {i}" for i in failed)
    assert all(futures[i].result() == i * 2 for i in set(range(40)) - failed)
    assert names(db) == {f"ok-{i}" for i in range(40) if i not in failed}
    assert len(commits) < 40  # grouped: fewer commits (fsyncs) than units of work


def test_an_integrity_error_is_the_failing_callers_alone(db):
    db.run(lambda s: s.execute(text("INSERT INTO item (name) VALUES ('taken')")))
    with pytest.raises(Exception, match="UNIQUE"):
        db.run(lambda s: s.execute(text("INSERT INTO item (name) VALUES ('taken')")))
    assert db.run(lambda s: s.execute(text("INSERT INTO item (name) VALUES ('free')")).rowcount) == 1
    assert names(db) == {"taken", "free"}


def test_a_unit_of_work_may_not_wait_for_itself(db):
    with pytest.raises(RuntimeError, match="inside a unit of work"):
        db.run(lambda s: db.run(lambda s2: 1))


def test_waiting_callers_go_before_background_work(db):
    """A clerk's unit of work does not queue behind a consumer's backlog (BACKGROUND)."""
    blocker, order = Blocker(), []

    def record(name):
        return lambda s: order.append(name)

    first = db._group.submit(blocker)
    assert blocker.started.wait(5)  # the writer is busy: what follows queues
    background = contextvars.copy_context()
    background.run(BACKGROUND.set, True)
    later = [background.run(db._group.submit, record(f"projection {i}")) for i in range(3)]
    urgent = db._group.submit(record("registration"))
    blocker.gate.set()
    for f in [first, urgent, *later]:
        f.result(5)
    assert order == ["registration", "projection 0", "projection 1", "projection 2"]


def test_the_work_runs_in_its_callers_context(db):
    """The writer thread runs each unit in its caller's context: the trace span staged events carry."""
    caller = contextvars.ContextVar("caller", default="none")

    def as_caller(name: str) -> str:
        caller.set(name)
        return db.run(lambda s: caller.get())

    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(as_caller, [f"c{i}" for i in range(16)]))
    assert seen == [f"c{i}" for i in range(16)]


def test_a_commit_tells_what_its_unit_did_and_a_rollback_tells_nothing(db):
    """Database.on_commit (how a commit that staged events wakes the outbox relay)."""
    seen = []
    db.on_commit(lambda s: seen.append(s.info.get("marked", False)))

    def marked(s):
        s.execute(text("INSERT INTO item (name) VALUES ('a')"))
        s.info["marked"] = True

    def fails(s):
        s.info["marked"] = True
        raise ValueError("rolled back")

    db.run(marked)
    db.run(lambda s: s.execute(text("INSERT INTO item (name) VALUES ('b')")))
    with pytest.raises(ValueError):
        db.run(fails)
    assert seen == [True, False]


@pytest.mark.parametrize("queued", [1, 3], ids=["alone", "in a group"])
def test_a_caller_that_gives_up_is_skipped_and_the_writer_carries_on(db, queued):
    """A caller's task cancelled while its work waits (a gRPC deadline, a stop) cancels its future. That
    work is not run, and the writer goes on serving everyone else (it once died setting a result on the
    cancelled future, and every later caller of the node waited for good)."""
    blocker = Blocker()
    first = db._group.submit(blocker)
    assert blocker.started.wait(5)  # the writer is busy: what follows queues
    abandoned = db._group.submit(insert("abandoned"))
    waiting = [db._group.submit(insert(f"kept {i}")) for i in range(queued - 1)]
    assert abandoned.cancel()
    blocker.gate.set()
    first.result(5)
    assert [f.result(5) for f in waiting] == [1] * (queued - 1)
    assert db._group.submit(insert("after")).result(5) == 1
    assert names(db) == {f"kept {i}" for i in range(queued - 1)} | {"after"}


def test_a_caller_cancelled_once_its_work_runs_still_gets_it_committed(db):
    gate, started = threading.Event(), threading.Event()

    def slow_insert(s):
        started.set()
        gate.wait(5)
        return s.execute(text("INSERT INTO item (name) VALUES ('taken up')")).rowcount

    fut = db._group.submit(slow_insert)
    assert started.wait(5)
    assert not fut.cancel()  # too late: the work is running and its commit will be kept
    gate.set()
    assert fut.result(5) == 1
    assert names(db) == {"taken up"}


def test_coroutines_get_a_groups_results_in_one_call_into_their_event_loop(db):
    """Database.run_async: each coroutine gets its own result or exception, and the writer calls into the
    event loop once per committed group, not once per unit of work (each such call wakes the loop)."""
    blocker = Blocker()

    async def run():
        calls = calls_into(asyncio.get_running_loop())
        first = asyncio.ensure_future(db.run_async(blocker))
        await asyncio.to_thread(blocker.started.wait, 5)  # the writer is busy: the ten below queue as one group
        units = [asyncio.ensure_future(db.run_async(insert("dup" if i in (3, 4) else f"n{i}"))) for i in range(10)]
        await asyncio.sleep(0.05)
        blocker.gate.set()
        await first
        results = await asyncio.gather(*units, return_exceptions=True)
        return results, sum(1 for thread, _ in calls if thread == "sqlite-group-commit")

    results, hand_outs = asyncio.run(run())
    assert [r if isinstance(r, int) else type(r).__name__ for r in results] == [1, 1, 1, 1, "IntegrityError"] + [1] * 5
    assert hand_outs == 2  # the blocker's group, then the ten's
    assert names(db) == {f"n{i}" for i in range(10) if i not in (3, 4)} | {"dup"}


def test_a_coroutine_that_gives_up_while_its_work_waits_has_it_skipped(db):
    blocker = Blocker()

    async def run():
        first = asyncio.ensure_future(db.run_async(blocker))
        await asyncio.to_thread(blocker.started.wait, 5)
        abandoned = asyncio.ensure_future(db.run_async(
            lambda s: s.execute(text("INSERT INTO item (name) VALUES ('abandoned')"))))
        await asyncio.sleep(0.05)
        abandoned.cancel()  # (a gRPC deadline, a stop)
        await asyncio.sleep(0.05)
        blocker.gate.set()
        await first
        return await db.run_async(lambda s: s.execute(text("INSERT INTO item (name) VALUES ('after')")).rowcount)

    assert asyncio.run(run()) == 1
    assert names(db) == {"after"}


def test_the_writer_keeps_one_connection_for_all_its_groups_and_a_failed_unit_does_not_spoil_it(db):
    checkouts = []
    event.listen(db.engine, "checkout", lambda *_: checkouts.append(threading.current_thread().name))
    for i in range(20):
        db.run(insert(f"n{i}"))
    with pytest.raises(Exception, match="UNIQUE"):
        db.run(insert("n0"))
    db.run(insert("after the failure"))
    assert checkouts == ["sqlite-group-commit"]  # (one per group from the pool: 22)
    assert names(db) == {f"n{i}" for i in range(20)} | {"after the failure"}
