"""Routing tables: cases this node routes (it received them), offers it sent, offers it received."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, utcnow


class RoutedCase(Base):
    __tablename__ = "routed_cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    category: Mapped[str | None] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    reported_agency: Mapped[str | None] = mapped_column(String(60))
    audience: Mapped[list] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    returns: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[list] = mapped_column(JSON, default=list)
    decisions: Mapped[list] = mapped_column(JSON, default=list)


class OfferOut(Base):
    """交办 owed to a target node; the dispatcher delivers it over gRPC once its event is on the bus."""
    __tablename__ = "offers_out"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(60))
    event_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|delivered
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    flagged: Mapped[bool] = mapped_column(default=False)


class OfferIn(Base):
    """An offer this node received: to sign for (签收) or return (退回)."""
    __tablename__ = "offers_in"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_agency: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    title: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(Text)
    skipped_level: Mapped[bool] = mapped_column(default=False)
    audience: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|signed|returned
    answer_reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
