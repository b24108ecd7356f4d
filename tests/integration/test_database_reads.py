"""Database.read() on both backends: one snapshot for the whole read. A case page reads the case row and
then its events; with PostgreSQL's default READ COMMITTED a fold committed between the two showed the
new event beside the old state (a served ticket without its 接待时间)."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text

from shared.db.session import Database

_names = itertools.count()


@pytest.fixture
def db(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 'reads.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg").create_db(f"reads_{next(_names)}_{tmp_path.name[-6:]}".lower()))
    database = Database(url)
    database.run(lambda s: s.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")))
    database.run(lambda s: s.execute(text("INSERT INTO counter (id, n) VALUES (1, 0)")))
    yield database
    database.dispose()


def test_a_read_sees_one_snapshot_and_never_waits_for_writers(db):
    count = text("SELECT n FROM counter WHERE id = 1")
    with db.read() as s:
        before = s.execute(count).scalar_one()
        db.run(lambda w: w.execute(text("UPDATE counter SET n = n + 1 WHERE id = 1")))  # committed meanwhile
        during = s.execute(count).scalar_one()
    with db.read() as s:
        after = s.execute(count).scalar_one()
    assert (before, during, after) == (0, 0, 1)
