"""Tables every service has: the transactional outbox, the inbox of processed events, the audit trail."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Awaitable, Callable

from sqlalchemy import JSON, ColumnElement, DateTime, Integer, String, Text, bindparam, func, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.db import rows
from shared.db.base import Base, utcnow
from shared.db.prepared import Prepared

if TYPE_CHECKING:
    from shared.db.session import Database


class OutboxRow(Base):
    """An event committed with the state change that caused it; the relay publishes it later."""
    __tablename__ = "outbox"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    subject: Mapped[str] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class InboxRow(Base):
    """An event a consumer has processed: seeing it again changes nothing."""
    __tablename__ = "inbox"
    consumer: Mapped[str] = mapped_column(String(80), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditRow(Base):
    """Append-only, hash-chained: each row's hash covers its content and the previous row's hash."""
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    agency: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str] = mapped_column(String(80))
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


def already_processed(s: Session, consumer: str, event_id: str) -> bool:
    """Record the event for this consumer; True if it had been recorded before (a replay)."""
    if rows.row_exists(s, InboxRow.__table__, consumer=consumer, event_id=event_id):
        return True
    _INBOX_INSERT.run(s, dict(consumer=consumer, event_id=event_id, processed_at=utcnow()))
    return False


def next_retry(db: "Database", next_try_at, pending: ColumnElement) -> Callable[[datetime], Awaitable[datetime | None]]:
    """A dispatcher's `next_due` (shared.wakeup.dispatch) for one table of deliveries: when the earliest
    of the deliveries still owed (`pending`) is due to be tried again (`next_try_at`: the column), of those
    due after `began`, when the dispatcher's last round began."""
    # built once: a statement built anew works out its cache key every time, and a dispatcher asks after
    # every round
    query = select(func.min(next_try_at)).where(pending, next_try_at > bindparam("after"))

    async def next_due(began: datetime) -> datetime | None:
        return await db.run_async(lambda s: s.scalar(query, {"after": began}))
    return next_due


GENESIS = "0" * 64


def _row_hash(prev: str, at: str, agency: str, actor: str, action: str, object_id: str, detail: str) -> str:
    body = json.dumps([prev, at, agency, actor, action, object_id, detail], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


# (prepared: shared/db/prepared.py)
_INBOX_INSERT, _AUDIT_INSERT = Prepared(InboxRow.__table__.insert()), Prepared(AuditRow.__table__.insert())
_AUDIT_HEAD = Prepared(select(AuditRow.__table__.c.hash).order_by(AuditRow.__table__.c.seq.desc()).limit(1))
# One writer extends the chain at a time. PostgreSQL: an advisory lock. SQLite: pysqlite begins the
# transaction only at the first write, so a caller that has only read so far would read the chain's head
# outside any lock and two threads would fork the chain; a no-op write takes SQLite's write lock first
# (waiting on the busy timeout), then the head is read.
_AUDIT_LOCK = {"postgresql": Prepared(text("SELECT pg_advisory_xact_lock(224466)")),
               "sqlite": Prepared(text("UPDATE audit_log SET seq = seq WHERE 0"))}


def audit(s: Session, *, agency: str, actor: str, action: str, object_id: str, detail: str = "") -> None:
    """Append one entry to the audit trail inside the caller's transaction."""
    db = s.connection()
    if (lock := _AUDIT_LOCK.get(db.dialect.name)) is not None:
        lock.run(db, {})
    prev = _AUDIT_HEAD.scalar(db, {}) or GENESIS
    at, detail = utcnow(), detail or ""  # (None would be hashed as "None" yet stored as NULL: a broken entry)
    _AUDIT_INSERT.run(db, dict(
        at=at, agency=agency, actor=actor, action=action, object_id=object_id, detail=detail, prev_hash=prev,
        hash=_row_hash(prev, at.isoformat(), agency, actor, action, object_id, detail)))


def verify_audit(s: Session) -> list[str]:
    """Problems found in the chain (empty when intact): edited rows, deleted rows, broken links."""
    problems, prev, expected_seq = [], GENESIS, None
    for row in s.scalars(select(AuditRow).order_by(AuditRow.seq)):
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=utcnow().tzinfo)
        if expected_seq is not None and row.seq != expected_seq:
            problems.append(f"entry {expected_seq}..{row.seq - 1} missing (deleted)")
        if row.prev_hash != prev:
            problems.append(f"entry {row.seq}: link to the previous entry broken")
        if _row_hash(row.prev_hash, at.isoformat(), row.agency, row.actor, row.action, row.object_id, row.detail) != row.hash:
            problems.append(f"entry {row.seq}: content does not match its hash (modified)")
        prev, expected_seq = row.hash, row.seq + 1
    return problems
