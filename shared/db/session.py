"""Engines and the unit of work. Only the unit-of-work boundary commits (handlers open it)."""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared import metrics

T = TypeVar("T")
GROUP_MAX = 64  # units of work committed together at most (one SQLite fsync for all of them)
# Items of background work (a consumer's events, the cases a checker looks at) one unit of work takes at
# most: a unit's begin and commit cost about as much CPU as a fold, and a caller waits behind one unit
PER_UNIT = 32

# Work a service does in the background (catching up on the ledger) rather than for a waiting caller:
# the bus consumer sets it for its whole task. On SQLite's single writer, waiting callers go first, so a
# clerk's registration does not queue behind a node's backlog of projections.
BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("lianfang_background_work", default=False)
URGENT, LATER, STOP = 0, 1, 2


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            dbapi_conn.isolation_level = None  # pysqlite's own BEGIN handling breaks SAVEPOINT: we emit BEGIN
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # durable before the desk is answered
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.connection.driver_connection.execute("BEGIN")  # (on the driver: once per transaction)

        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _transient(e: OperationalError) -> bool:
    return any(m in str(e) for m in ("could not serialize", "deadlock", "database is locked"))


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        sqlite = url.startswith("sqlite")
        # A read is one snapshot: PostgreSQL's default READ COMMITTED gives every statement its own, so a
        # case row and its events could be read on either side of a fold. (SQLite's WAL read
        # transaction is a snapshot already.)
        self._reads = self._sessions if sqlite else sessionmaker(
            self.engine.execution_options(isolation_level="REPEATABLE READ"), expire_on_commit=False)
        # SQLite has one writer at a time, and a blocked writer polls with growing sleeps: under load the
        # service's own threads queue on this lock instead (FIFO-ish, no sleeping). PostgreSQL needs none.
        self._writer = threading.RLock() if sqlite else contextlib.nullcontext()
        self._group = GroupCommit(self) if sqlite else None

    @contextmanager
    def unit_of_work(self, bind: Connection | None = None) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception. `bind`: a connection of the
        caller's own to run it on (else one from the pool)."""
        with self._writer, self._sessions(bind=bind or self.engine) as s, s.begin():
            yield s

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Call `callback(session)` after each unit of work commits (on the thread that committed; the
        session's `info` tells what the unit did, e.g. that it staged events for the outbox relay)."""
        event.listen(self._sessions, "after_commit", callback)

    def read(self) -> Session:
        """A session for reading only, on one snapshot of the database; it never waits for writers."""
        return self._reads()

    def run(self, work: Callable[[Session], T], attempts: int = 5) -> T:
        """Run `work` in a unit of work, retrying serialization failures and SQLite lock timeouts. On
        SQLite, concurrent callers share one transaction and one fsync (GroupCommit)."""
        if self._group is not None:
            return self._group.submit(work).result()
        return self.run_alone(work, attempts)

    async def run_async(self, work: Callable[[Session], T]) -> T:
        """Database.run for a coroutine. On SQLite the event loop awaits the group-commit writer directly:
        no worker thread in between, which cost ≈ 90 µs of CPU per unit of work (measured)."""
        if self._group is not None:
            return await self._group.submit_async(work)
        return await asyncio.to_thread(self.run_alone, work)

    def run_alone(self, work: Callable[[Session], T], attempts: int = 5, bind: Connection | None = None) -> T:
        """`work` in a transaction of its own (PostgreSQL; a group of one on SQLite), with retries."""
        for attempt in range(attempts):
            try:
                with self.unit_of_work(bind) as s:
                    return work(s)
            except OperationalError as e:
                if not _transient(e) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        if self._group is not None:
            self._group.close()
        self.engine.dispose()


Waiter = tuple[asyncio.AbstractEventLoop, asyncio.Future]  # where a coroutine awaits a unit of work's result


def _hand_out(done: list[tuple[Future, Waiter]]) -> None:
    """Pass committed results on to the coroutines awaiting them: one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Future, asyncio.Future]]] = {}
    for fut, (loop, waiter) in done:
        by_loop.setdefault(loop, []).append((fut, waiter))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # (that loop is closed: nobody awaits any more)
            loop.call_soon_threadsafe(_settle, pairs)


def _settle(pairs: list[tuple[Future, asyncio.Future]]) -> None:
    for fut, waiter in pairs:
        if not waiter.done():  # (cancelled meanwhile: its caller gave up)
            error = fut.exception()
            waiter.set_exception(error) if error is not None else waiter.set_result(fut.result())


class GroupCommit:
    """Group commit for SQLite, whose every COMMIT is an fsync (~10 ms here) taken under its single
    write lock. Units of work queued by concurrent callers (HTTP requests, consumers of different
    cases) run one after another on one writer thread, in one transaction, each inside its own
    SAVEPOINT — one that raises undoes only itself and gets its own exception — and one COMMIT makes
    them all durable before any caller is answered. Results are handed out only after that commit."""

    def __init__(self, db: Database, attempts: int = 5):
        self.db, self.attempts = db, attempts
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._order = itertools.count()  # first come, first served within a priority
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, work: Callable[[Session], T], waiter: Waiter | None = None) -> Future:
        if threading.current_thread() is self._thread:
            raise RuntimeError("Database.run called from inside a unit of work (it would wait for itself)")
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="sqlite-group-commit", daemon=True)
                    self._thread.start()
        fut: Future = Future()
        # the caller's context (its trace span above all) goes with the work to the writer thread
        self._queue.put((LATER if BACKGROUND.get() else URGENT, next(self._order),
                         (functools.partial(contextvars.copy_context().run, work), fut, waiter)))
        return fut

    def submit_async(self, work: Callable[[Session], T]) -> asyncio.Future:
        """`submit` for a coroutine. The writer hands out a group's results to each event loop in one call
        once committed: a call into an event loop from another thread wakes it (a write to its wake-up
        pipe), and one per unit of work (asyncio.wrap_future) was ≈ 7 % of a busy consumer's CPU (py-spy)."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        fut = self.submit(work, (loop, waiter))
        waiter.add_done_callback(lambda w: fut.cancel() if w.cancelled() else None)  # (skipped if not yet taken)
        return waiter

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put((STOP, next(self._order), None))  # after the work queued before it
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        # The writer's own connection for as long as it runs: a checkout from the pool and its return (a
        # rollback) for every group cost ≈ 8 % of a projection's CPU (py-spy)
        with self.db.engine.connect() as conn:
            self._serve(conn)

    def _serve(self, conn: Connection) -> None:
        while (first := self._queue.get()[2]) is not None:
            group = [first]
            while len(group) < GROUP_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item[2] is None:
                    self._queue.put(item)  # stop after this group
                    break
                group.append(item[2])
            # A caller that gave up (its task cancelled: a gRPC deadline, a stop) cancels its future while
            # the work waits; that work is skipped. Once taken, a future can no longer be cancelled, so
            # its result is always handed out (setting one on a cancelled future would kill this thread).
            group = [(work, fut, waiter) for work, fut, waiter in group if fut.set_running_or_notify_cancel()]
            if not group:
                continue
            self._commit(conn, [(work, fut) for work, fut, _ in group])
            _hand_out([(fut, waiter) for _, fut, waiter in group if waiter is not None])
            metrics.inc("lianfang_db_commits_total", "SQLite transactions committed by the group-commit writer")
            metrics.inc("lianfang_db_units_of_work_total", "units of work those commits carried", len(group))

    def _commit(self, conn: Connection, group: list[tuple[Callable, Future]]) -> None:
        if len(group) == 1:  # the transaction is this caller's alone: no savepoint needed
            work, fut = group[0]
            try:
                fut.set_result(self.db.run_alone(work, self.attempts, bind=conn))
            except BaseException as e:
                fut.set_exception(e)
            return
        for attempt in range(self.attempts):
            outcomes: list[tuple[Future, bool, object]] = []
            try:
                with self.db.unit_of_work(conn) as s:
                    for work, fut in group:
                        try:
                            with s.begin_nested():
                                outcomes.append((fut, True, work(s)))
                        except OperationalError as e:
                            if _transient(e):
                                raise  # the whole group is retried
                            outcomes.append((fut, False, e))
                        except Exception as e:
                            outcomes.append((fut, False, e))
            except OperationalError as e:
                if _transient(e) and attempt < self.attempts - 1:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                outcomes = [(fut, False, e) for _, fut in group]
            except BaseException as e:  # the COMMIT itself failed: nothing of the group is durable
                outcomes = [(fut, False, e) for _, fut in group]
            for fut, ok, value in outcomes:
                fut.set_result(value) if ok else fut.set_exception(value)
            return
