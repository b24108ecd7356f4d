"""Engines and the unit of work. Only the unit-of-work boundary commits (handlers open it)."""
from __future__ import annotations

import contextlib
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # durable before the desk is answered
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time, and a blocked writer polls with growing sleeps: under load the
        # service's own threads queue on this lock instead (FIFO-ish, no sleeping). PostgreSQL needs none.
        self._writer = threading.RLock() if url.startswith("sqlite") else contextlib.nullcontext()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on any exception."""
        with self._writer, self._sessions() as s, s.begin():
            yield s

    def read(self) -> Session:
        return self._sessions()

    def run(self, work: Callable[[Session], T], attempts: int = 5) -> T:
        """Run `work` in a unit of work, retrying serialization failures and SQLite lock timeouts."""
        for attempt in range(attempts):
            try:
                with self.unit_of_work() as s:
                    return work(s)
            except OperationalError as e:
                transient = "could not serialize" in str(e) or "deadlock" in str(e) or "database is locked" in str(e)
                if not transient or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
