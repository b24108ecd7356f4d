"""Legal-referral tables: cases this node classifies (it received them), referrals it sent, referrals it
received (to accept or decline, then report on), receipt serials, and the relief projection (totals)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, utcnow


class LegalCase(Base):
    """A case this node received (首问): its facts from case.registered, and its legal classification
    once routing hands it over. status: registered | classifying | referred | accepted | declined |
    manual_review | filed | decided | withdrawn."""
    __tablename__ = "legal_cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[str | None] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    reported_agency: Mapped[str | None] = mapped_column(String(60))
    registered_at: Mapped[str] = mapped_column(String(40))
    audience: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    classification: Mapped[dict | None] = mapped_column(JSON)
    history: Mapped[list] = mapped_column(JSON, default=list)        # every classification, with its attempt
    declines: Mapped[list] = mapped_column(JSON, default=list)
    excluded_channels: Mapped[list] = mapped_column(JSON, default=list)
    receipt_no: Mapped[str | None] = mapped_column(String(80))
    notice: Mapped[dict | None] = mapped_column(JSON)


class ReferralOut(Base):
    """A referral (kind channel) or relief request (kind relief) owed to a receiving node; the dispatcher
    delivers it over gRPC once its event is on the bus, retrying with backoff."""
    __tablename__ = "referrals_out"
    ref_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(60))
    event_id: Mapped[str] = mapped_column(String(40))
    request: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|delivered
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(default=False)


class ReferralIn(Base):
    """A referral or relief request this node received. status: pending | accepted | declined |
    superseded | filed | decided | withdrawn (channel); pending | accepted | approved | refused (relief)."""
    __tablename__ = "referrals_in"
    __table_args__ = (UniqueConstraint("receipt_no"),)
    ref_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    from_agency: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(40))
    channel_label: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(60))
    reasons: Mapped[list] = mapped_column(JSON)
    audience: Mapped[list] = mapped_column(JSON)
    reported_agency: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(20), index=True)
    receipt_no: Mapped[str | None] = mapped_column(String(80))
    answer_reason: Mapped[str | None] = mapped_column(Text)
    amount_requested_fen: Mapped[int | None] = mapped_column(Integer)
    amount_granted_fen: Mapped[int | None] = mapped_column(Integer)
    basis: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list] = mapped_column(JSON, default=list)
    history: Mapped[list] = mapped_column(JSON, default=list)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReceiptCounter(Base):
    """The last serial of each receipt word per year (回执编号 are issued in order, without gaps)."""
    __tablename__ = "receipt_counters"
    word: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class ReliefRow(Base):
    """救助 requests as the ledger tells them (the cases this node shares): the totals per body."""
    __tablename__ = "relief_requests"
    request_id: Mapped[str] = mapped_column(String(60), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    requested_by: Mapped[str] = mapped_column(String(60))
    to_agency: Mapped[str] = mapped_column(String(60), index=True)
    amount_requested_fen: Mapped[int] = mapped_column(Integer)
    amount_granted_fen: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # requested | received | approved | refused
    receipt_no: Mapped[str | None] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text)
