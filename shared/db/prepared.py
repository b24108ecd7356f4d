"""Statements a service runs for every event or request, compiled once per dialect and run on the DB-API
cursor of the unit of work's connection.

SQLAlchemy's execution path (execution context, parameter processing, result objects) cost ≈ 10 × the
SQLite statement itself: py-spy on a bench run put a third of the 人社局 intake's CPU in
Connection.execute and 2 % in sqlite3. A Prepared statement does what that path did for it — the
dialect's SQL and bind casts, the columns' bind and result processors (JSON, dates), DB-API errors
wrapped as SQLAlchemy's (IntegrityError, OperationalError) — once per set of parameter names, and then
only the driver call. It runs inside the caller's transaction and savepoints like any statement.
A statement that needs more than that (Python-side column defaults left to fill, IN lists) is run by
SQLAlchemy as before."""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable


class _Compiled:
    """One statement as one dialect runs it, for one set of parameter names."""

    def __init__(self, stmt: Executable, dialect: Dialect, names: tuple[str, ...]):
        c = stmt.compile(dialect=dialect, column_keys=list(names))
        self.sql = c.string
        # (an implicit RETURNING of the primary key, PostgreSQL's on inserts, returns a row nobody reads)
        self.plain = not (c.insert_prefetch or c.update_prefetch or c.literal_execute_params
                          or c.post_compile_params or c.escaped_bind_names)
        processors = c._bind_processors
        order = c.positiontup if c.positional else list(c.bind_names.values())
        # (name in the parameters, its processor or None), in the statement's order when positional
        self.binds = [(n, processors.get(n)) for n in order]
        self.positional = c.positional
        self.columns = [(col.keyname, col.type._cached_result_processor(dialect, None))
                        for col in (c._result_columns or [])]
        # values bound into the statement itself (select(...).where(x == 1))
        self.constants = {n: b.effective_value for n, b in c.binds.items() if not b.required}

    def parameters(self, given: Mapping[str, Any]) -> tuple | dict:
        values = {**self.constants, **given}
        if self.positional:
            return tuple(p(values[n]) if p else values[n] for n, p in self.binds)
        return {n: (p(values[n]) if p else values[n]) for n, p in self.binds}


class Prepared:
    """`Prepared(table.insert()).run(s, {...})`; a select's `.first(s, {...})` (a dict or None), `.all(s, {...})`
    (a list of dicts), `.scalar(s, {...})`. `s`: the unit of work's Session or Connection."""

    def __init__(self, stmt: Executable):
        self.stmt = stmt
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def _for(self, conn: Connection, names: tuple[str, ...]) -> _Compiled:
        key = (conn.dialect.name, names)
        if (c := self._compiled.get(key)) is None:
            c = self._compiled[key] = _Compiled(self.stmt, conn.dialect, names)
        return c

    def _execute(self, s: Session | Connection, params: Mapping[str, Any] | list[Mapping[str, Any]]):
        conn = s.connection() if isinstance(s, Session) else s
        many = isinstance(params, list)
        c = self._for(conn, tuple(sorted(params[0] if many else params)))
        if not c.plain:
            return conn.execute(self.stmt, params), None
        args = [c.parameters(p) for p in params] if many else c.parameters(params)
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.executemany(c.sql, args) if many else cursor.execute(c.sql, args)
        except conn.dialect.loaded_dbapi.Error as e:
            cursor.close()
            raise exc.DBAPIError.instance(c.sql, args, e, conn.dialect.loaded_dbapi.Error,
                                          dialect=conn.dialect) from e
        return cursor, c

    def run(self, s: Session | Connection, params: Mapping[str, Any] | list[Mapping[str, Any]]) -> int:
        """Execute (a list of parameter sets: executemany); the number of rows it changed."""
        cursor, c = self._execute(s, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def first(self, s: Session | Connection, params: Mapping[str, Any]) -> dict | None:
        """The first row as {column: value}, or None."""
        found = self._rows(s, params, first=True)
        return found[0] if found else None

    def all(self, s: Session | Connection, params: Mapping[str, Any]) -> list[dict]:
        """Every row, each as {column: value}."""
        return self._rows(s, params, first=False)

    def _rows(self, s: Session | Connection, params: Mapping[str, Any], first: bool) -> list[dict]:
        cursor, c = self._execute(s, params)
        if c is None:  # (run by SQLAlchemy)
            found = cursor.mappings()
            return [dict(row) for row in (found.fetchmany(1) if first else found)]
        try:
            found = cursor.fetchmany(1) if first else cursor.fetchall()
        finally:
            cursor.close()
        return [{name: (p(v) if p else v) for (name, p), v in zip(c.columns, row)} for row in found]

    def scalar(self, s: Session | Connection, params: Mapping[str, Any]) -> Any:
        row = self.first(s, params)
        return None if row is None else next(iter(row.values()))
