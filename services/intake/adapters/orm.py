"""Intake tables. Read model (cases, case_events, query_codes, registrations) is rebuilt from the
ledger; petitioners and idempotency keys are this node's own records."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, utcnow


class CaseRow(Base):
    """One case as this node sees it: the fold of its events (shared.ledger.apply)."""
    __tablename__ = "cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    category: Mapped[str | None] = mapped_column(String(30), index=True)
    division: Mapped[str] = mapped_column(String(6), index=True)
    holder: Mapped[str] = mapped_column(String(60), index=True)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    state: Mapped[dict] = mapped_column(JSON)
    # 督办看板 columns (domain.dashboard.summary of the state, kept at every fold; migration intake_0004)
    registered_day: Mapped[str | None] = mapped_column(String(10))  # YYYY-MM-DD (Beijing)
    collective: Mapped[bool | None] = mapped_column(Boolean)
    repeat: Mapped[bool | None] = mapped_column(Boolean)            # at least one 重复信访 linked
    orders: Mapped[int | None] = mapped_column(Integer)             # 督办 orders
    open_due: Mapped[str | None] = mapped_column(String(10))  # earliest due date of a clock still running
    late_days: Mapped[int | None] = mapped_column(Integer)    # worst lateness of a clock met late

    __table_args__ = (  # the dashboard reads these indexes, not the rows (and their state), but for its top 20
        Index("ix_cases_registered_day", "registered_day", "division"),
        Index("ix_cases_open_due", "open_due", "registered_day", "division"),
        Index("ix_cases_late_days", "late_days", "registered_day", "division"))


class CaseVolumeRow(Base):
    """督办看板 volumes: how many cases registered on a day (period YYYY-MM-DD) or in a month (YYYY-MM) per
    category ('' for none), division and holder, and how many of them collective or repeated. Counters
    kept by the projection (handlers.project_event: a case's contribution moves when its key changes), so
    a year of the dashboard reads a few thousand rows, not a million cases (migration intake_0004)."""
    __tablename__ = "case_volumes"
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    category: Mapped[str] = mapped_column(String(30), primary_key=True)
    division: Mapped[str] = mapped_column(String(6), primary_key=True)
    holder: Mapped[str] = mapped_column(String(60), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    collective: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)


class CaseEventRow(Base):
    __tablename__ = "case_events"
    pos: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    stream_seq: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40), index=True)  # migration intake_0003
    agency: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    time: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)


class QueryCodeRow(Base):
    """查询码: only its hash is kept (and travels); the petitioner holds the code."""
    __tablename__ = "query_codes"
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)


class RegistrationRow(Base):
    """Every registration on the ledger (shared or not), for repeat detection: pseudonym, never the ID."""
    __tablename__ = "registrations"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    pseudonym: Mapped[str | None] = mapped_column(String(64), index=True)
    category: Mapped[str | None] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    text: Mapped[str] = mapped_column(Text)
    audience: Mapped[list] = mapped_column(JSON)
    terminated_at: Mapped[str | None] = mapped_column(String(40))  # 三级终结: repeats are declined, not linked


class PetitionerRow(Base):
    """信访人 identity, encrypted field by field (AES-256-GCM); held only by the receiving node."""
    __tablename__ = "petitioners"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    role: Mapped[str] = mapped_column(String(20))  # petitioner | representative
    name_enc: Mapped[str] = mapped_column(Text)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    address_enc: Mapped[str | None] = mapped_column(Text)


class IdempotencyRow(Base):
    __tablename__ = "idempotency_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
