"""Supervision tables. Everything but the outbox/inbox/audit plumbing is a projection of the ledger
(rebuilt by replaying it): the cases this node shares with their folded state, their events, the
督查督办 notices (催办, 督办, 责任追究) and the written decisions (信访处理意见书, 复查/复核意见)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base


class Meta(Base):
    """Key/value facts about this database (e.g. the epoch that names its durable consumer)."""
    __tablename__ = "sv_meta"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class SvCase(Base):
    """One case this node shares: the fold of its events (shared.ledger.apply)."""
    __tablename__ = "sv_cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(30), index=True)
    division: Mapped[str] = mapped_column(String(6), index=True)
    holder: Mapped[str] = mapped_column(String(60), index=True)
    supervisor: Mapped[str] = mapped_column(String(60), index=True)   # the one node that emits 督查督办 events
    leader: Mapped[str | None] = mapped_column(String(60), index=True)  # 领导包案
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    next_check: Mapped[str | None] = mapped_column(String(10), index=True)  # YYYY-MM-DD (Beijing); None: nothing due
    state: Mapped[dict] = mapped_column(JSON)


class SvCaseSummary(Base):
    """What one case contributes to the 考核 figures (domain.assessment.summary of its state), kept by the
    projection at every fold, one narrow row per case: the assessment adds these up with SQL instead of
    folding every event of every case on each request (migration supervision_0002)."""
    __tablename__ = "sv_case_summaries"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    registered_day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD (Beijing)
    holder: Mapped[str] = mapped_column(String(60))
    division: Mapped[str] = mapped_column(String(6))
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the latest event's time (UTC)
    acceptance_notice_due: Mapped[str] = mapped_column(String(10))
    acceptance_notice_result: Mapped[str | None] = mapped_column(String(10))  # met | breached, once done
    handling_due: Mapped[str | None] = mapped_column(String(10))              # None: the clock has not started
    handling_result: Mapped[str | None] = mapped_column(String(10))
    review_decision_due: Mapped[str | None] = mapped_column(String(10))
    review_decision_result: Mapped[str | None] = mapped_column(String(10))
    re_review_decision_due: Mapped[str | None] = mapped_column(String(10))
    re_review_decision_result: Mapped[str | None] = mapped_column(String(10))
    replied: Mapped[bool] = mapped_column(Boolean)
    rated: Mapped[bool] = mapped_column(Boolean)
    satisfied: Mapped[bool] = mapped_column(Boolean)
    review_requested: Mapped[bool] = mapped_column(Boolean)
    repeat: Mapped[bool] = mapped_column(Boolean)
    skipped_level: Mapped[bool] = mapped_column(Boolean)
    orders: Mapped[int] = mapped_column(Integer)
    listed: Mapped[int] = mapped_column(Integer)
    running_due: Mapped[str | None] = mapped_column(String(10))  # the earliest due date of a clock still running

    __table_args__ = (Index("ix_sv_case_summaries_running_due", "running_due", "registered_day"),
                      Index("ix_sv_case_summaries_last_event_at", "last_event_at", "registered_day"))


class SvAssessmentCount(Base):
    """考核 counters: the sum of assessment.settled_tally over the cases registered on a day (period
    YYYY-MM-DD) or in a month (YYYY-MM) per holder and division, kept by the projection (a case's
    contribution moves when its summary changes), so a year's figures read a few thousand rows."""
    __tablename__ = "sv_assessment_counts"
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    holder: Mapped[str] = mapped_column(String(60), primary_key=True)
    division: Mapped[str] = mapped_column(String(6), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer)
    acceptance_met: Mapped[int] = mapped_column(Integer)
    acceptance_ended: Mapped[int] = mapped_column(Integer)
    handling_met: Mapped[int] = mapped_column(Integer)
    handling_ended: Mapped[int] = mapped_column(Integer)
    replied: Mapped[int] = mapped_column(Integer)
    replied_rated: Mapped[int] = mapped_column(Integer)
    replied_satisfied: Mapped[int] = mapped_column(Integer)
    replied_first_time: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[int] = mapped_column(Integer)
    skipped_level: Mapped[int] = mapped_column(Integer)
    breached_acceptance_notice: Mapped[int] = mapped_column(Integer)
    breached_handling: Mapped[int] = mapped_column(Integer)
    breached_review_decision: Mapped[int] = mapped_column(Integer)
    breached_re_review_decision: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    listed: Mapped[int] = mapped_column(Integer)


class SvEvent(Base):
    __tablename__ = "sv_events"
    pos: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    stream_seq: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    agency: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    time: Mapped[str] = mapped_column(String(40))
    audience: Mapped[list] = mapped_column(JSON)
    payload: Mapped[dict] = mapped_column(JSON)


class SvNotice(Base):
    """催办 reminder, 督办/挂牌督办 order or 责任追究 record (one per event; the event id is the key)."""
    __tablename__ = "sv_notices"
    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # reminder | order | accountability
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    clock: Mapped[str] = mapped_column(String(30))
    level: Mapped[str | None] = mapped_column(String(10))      # 督办 | 挂牌督办 (orders)
    addressed_to: Mapped[str] = mapped_column(String(60), index=True)
    supervisor: Mapped[str] = mapped_column(String(60), index=True)
    due_date: Mapped[str] = mapped_column(String(10))
    days_late: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)


class SvDocument(Base):
    """A written decision: 信访处理意见书 (reply), 复查意见书, 复核意见书. Its id is the event id."""
    __tablename__ = "sv_documents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # reply | review | re_review
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    agency: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[str] = mapped_column(String(40))
