"""shared.db.prepared on both backends: a statement run on the driver's cursor stores and reads back what
SQLAlchemy's own execution does (JSON, time zones, booleans), raises SQLAlchemy's errors, and leaves
statements it cannot run plainly (Python-side defaults) to SQLAlchemy."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from sqlalchemy import JSON, Boolean, Column, DateTime, Integer, MetaData, String, Table, bindparam, exc, select, text
from sqlalchemy.orm import registry

from shared.db import rows
from shared.db.prepared import Prepared
from shared.db.session import Database

_names = itertools.count()
meta = MetaData()
things = Table("things", meta, Column("id", String(20), primary_key=True), Column("doc", JSON, nullable=False),
               Column("at", DateTime(timezone=True)), Column("flag", Boolean, nullable=False),
               Column("n", Integer, nullable=False, default=7))  # (a Python-side default)
tallies = Table("tallies", meta, Column("key", String(20), primary_key=True), Column("n", Integer, nullable=False))

INSERT = Prepared(things.insert())
BY_ID = Prepared(select(things.c.doc, things.c.at, things.c.flag, things.c.n).where(things.c.id == bindparam("id")))
FLAGGED = Prepared(select(things.c.id).where(things.c.flag == True, things.c.n == 7).order_by(things.c.id))  # noqa: E712
RENAME = Prepared(things.update().where(things.c.id == bindparam("old")))
TALLY = Prepared(text("INSERT INTO tallies (key, n) VALUES (:key, :n) ON CONFLICT (key) DO UPDATE SET n = tallies.n + excluded.n"))
AT = datetime(2026, 11, 30, 8, 15, 30, tzinfo=timezone.utc)


class Thing:
    """An ORM class of `things` (rows.insert_object)."""

    def __init__(self, **columns):
        for name, value in columns.items():
            setattr(self, name, value)


registry().map_imperatively(Thing, things)


@pytest.fixture
def db(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path / 'prepared.db'}" if backend == "sqlite"
           else request.getfixturevalue("pg").create_db(f"prepared_{next(_names)}_{tmp_path.name[-6:]}".lower()))
    database = Database(url)
    meta.create_all(database.engine)
    yield database
    database.dispose()


def test_what_a_prepared_statement_stores_reads_back_as_sqlalchemy_does(db):
    doc = {"名称": "劳动争议", "items": [1, 2, {"x": None}]}
    db.run(lambda s: INSERT.run(s, {"id": "a", "doc": doc, "at": AT, "flag": True, "n": 3}))
    with db.read() as s:
        by_sqlalchemy = dict(s.execute(select(things.c.doc, things.c.at, things.c.flag, things.c.n)
                                       .where(things.c.id == "a")).mappings().one())
    by_prepared = db.run(lambda s: BY_ID.first(s, {"id": "a"}))
    assert by_prepared == by_sqlalchemy
    assert by_prepared["doc"] == doc and by_prepared["flag"] is True and by_prepared["n"] == 3
    assert by_prepared["at"].replace(tzinfo=by_prepared["at"].tzinfo or timezone.utc) == AT
    assert db.run(lambda s: BY_ID.first(s, {"id": "nothing"})) is None


def test_an_update_sets_only_the_columns_given_and_reports_the_rows_it_changed(db):
    db.run(lambda s: INSERT.run(s, {"id": "a", "doc": {}, "at": AT, "flag": False, "n": 1}))
    changed = db.run(lambda s: RENAME.run(s, {"old": "a", "id": "b", "flag": True}))
    missing = db.run(lambda s: RENAME.run(s, {"old": "zz", "flag": True}))
    assert (changed, missing) == (1, 0)
    row = db.run(lambda s: BY_ID.first(s, {"id": "b"}))
    assert (row["doc"], row["flag"], row["n"]) == ({}, True, 1)


def test_a_list_of_parameter_sets_is_executed_as_many(db):
    db.run(lambda s: TALLY.run(s, [{"key": "x", "n": 2}, {"key": "y", "n": 5}, {"key": "x", "n": 3}]))
    with db.read() as s:
        assert dict(s.execute(select(tallies.c.key, tallies.c.n)).all()) == {"x": 5, "y": 5}


def test_driver_errors_come_as_sqlalchemys_and_undo_only_their_unit_of_work(db):
    db.run(lambda s: INSERT.run(s, {"id": "a", "doc": {"v": 1}, "at": AT, "flag": True, "n": 1}))
    with pytest.raises(exc.IntegrityError):
        db.run(lambda s: (INSERT.run(s, {"id": "c", "doc": {}, "at": AT, "flag": True, "n": 1}),
                          INSERT.run(s, {"id": "a", "doc": {"v": 2}, "at": AT, "flag": True, "n": 1})))
    with db.read() as s:  # nothing of the failed unit is stored, the earlier row is untouched
        assert s.execute(select(things.c.id, things.c.doc)).all() == [("a", {"v": 1})]


def test_python_side_defaults_and_constants_in_the_statement_are_honoured(db):
    db.run(lambda s: INSERT.run(s, {"id": "d", "doc": {}, "at": None, "flag": True}))  # n: its default, 7
    db.run(lambda s: INSERT.run(s, {"id": "e", "doc": {}, "at": None, "flag": False}))
    db.run(lambda s: INSERT.run(s, {"id": "f", "doc": {}, "at": None, "flag": True, "n": 8}))
    assert db.run(lambda s: BY_ID.first(s, {"id": "d"}))["n"] == 7
    with db.read() as s:
        assert [r.id for r in s.execute(select(things.c.id).where(things.c.flag == True, things.c.n == 7))] == ["d"]  # noqa: E712
    db.run(lambda s: INSERT.run(s, {"id": "g", "doc": {}, "at": None, "flag": True}))
    assert db.run(lambda s: FLAGGED.first(s, {})) == {"id": "d"}
    assert db.run(lambda s: FLAGGED.all(s, {})) == [{"id": "d"}, {"id": "g"}]


def test_an_orm_object_never_added_to_the_session_is_inserted_as_it_stands(db):
    doc = {"受理": ["人社局"]}
    db.run(lambda s: rows.insert_object(s, Thing(id="o", doc=doc, at=AT, flag=True)))  # n unset: its default
    row = db.run(lambda s: BY_ID.first(s, {"id": "o"}))
    assert (row["doc"], row["flag"], row["n"]) == (doc, True, 7)
    assert db.run(lambda s: rows.row_exists(s, things, id="o"))
