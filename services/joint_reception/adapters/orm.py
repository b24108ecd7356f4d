"""Joint-reception tables. At the centre: the cases it shares (their audience), tickets, roster and
leader-day changes, sessions with their outgoing invitations, hearings, 领导包案 records. At every
node: the invitations it received."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base, utcnow


class KnownCase(Base):
    """A case the centre's node shares, as the ledger says (so its events reach every sharing node)."""
    __tablename__ = "known_cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    audience: Mapped[list] = mapped_column(JSON)
    title: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(30))
    division: Mapped[str | None] = mapped_column(String(6))
    reported_agency: Mapped[str | None] = mapped_column(String(60))
    registered: Mapped[bool] = mapped_column(default=False)


class Ticket(Base):
    """取号: one walk-in visit (or one collective visit through its representatives)."""
    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("day", "number", name="uq_tickets_day_number"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    day: Mapped[str] = mapped_column(String(10), index=True)      # Beijing calendar day, ISO
    number: Mapped[str] = mapped_column(String(8))
    topic: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(30))
    window_id: Mapped[str] = mapped_column(String(40), index=True)
    window_agency: Mapped[str] = mapped_column(String(60))
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    persons: Mapped[int] = mapped_column(Integer, default=1)
    collective: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default="waiting", index=True)  # waiting|called|served
    issued_by: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    called_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    served_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    served_by: Mapped[str | None] = mapped_column(String(120))
    announced: Mapped[bool] = mapped_column(default=False)     # case.reception_ticketed staged


class TicketCounter(Base):
    """Daily ticket numbers per window prefix (R001, R002 …)."""
    __tablename__ = "ticket_counters"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(1), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class DutyChange(Base):
    """值班 set on the centre's screen; it replaces the file's entry for that day."""
    __tablename__ = "duty_changes"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    people: Mapped[list] = mapped_column(JSON)
    lead: Mapped[str | None] = mapped_column(String(60))
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LeaderDayChange(Base):
    """A leader assigned on the screen to a configured 领导接访日 (fills the gap)."""
    __tablename__ = "leader_day_changes"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    leader: Mapped[str] = mapped_column(String(60))
    title: Mapped[str | None] = mapped_column(String(60))
    changed_by: Mapped[str] = mapped_column(String(120))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JointSession(Base):
    """联合调处: one session on one case with the agencies invited to it."""
    __tablename__ = "joint_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(30))
    division: Mapped[str | None] = mapped_column(String(6))
    agenda: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(Text)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(20), default="inviting")  # inviting|ready|concluded
    invited: Mapped[list] = mapped_column(JSON)
    audience: Mapped[list] = mapped_column(JSON)
    opened_by: Mapped[str] = mapped_column(String(120))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(40))   # case.joint_session_opened: invitations go after it
    outcome: Mapped[dict | None] = mapped_column(JSON)


class InvitationOut(Base):
    """An invitation owed to an agency; the dispatcher delivers it over gRPC, retrying while it is down."""
    __tablename__ = "invitations_out"
    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agency: Mapped[str] = mapped_column(String(60), primary_key=True)
    delivery: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|delivered
    answer: Mapped[str] = mapped_column(String(20), default="pending")  # pending|accepted|declined
    reason: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)


class InvitationIn(Base):
    """An invitation this node received: to accept or decline with a reason."""
    __tablename__ = "invitations_in"
    session_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    centre: Mapped[str] = mapped_column(String(60))
    centre_name: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(30))
    division: Mapped[str] = mapped_column(String(6))
    agenda: Mapped[str] = mapped_column(Text)
    scheduled_at: Mapped[str] = mapped_column(String(40))
    place: Mapped[str] = mapped_column(Text)
    invited: Mapped[list] = mapped_column(JSON)
    audience: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)  # pending|accepted|declined
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_by: Mapped[str | None] = mapped_column(String(120))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Hearing(Base):
    """听证: scheduled with its participants; attendance and conclusion recorded once held."""
    __tablename__ = "hearings"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(Text)
    scheduled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    participants: Mapped[list] = mapped_column(JSON)
    audience: Mapped[list] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")  # scheduled|held
    attendance: Mapped[list | None] = mapped_column(JSON)
    conclusion: Mapped[str | None] = mapped_column(Text)
    scheduled_by: Mapped[str] = mapped_column(String(120))
    held_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LeaderCase(Base):
    """领导包案 taken by the receiving leader on a reception day."""
    __tablename__ = "leader_cases"
    case_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    leader: Mapped[str] = mapped_column(String(60))
    title: Mapped[str | None] = mapped_column(String(60))
    taken_by: Mapped[str] = mapped_column(String(120))
    taken_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
