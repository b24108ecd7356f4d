"""joint_reception: known cases, tickets, roster and leader-day changes, sessions, invitations, hearings,
leader cases, outbox/inbox/audit

Revision ID: joint_reception_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db.migrations import create_plumbing_tables

revision = "joint_reception_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables()
    ts = sa.DateTime(timezone=True)
    op.create_table("known_cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("title", sa.Text),
                    sa.Column("category", sa.String(30)),
                    sa.Column("division", sa.String(6)),
                    sa.Column("reported_agency", sa.String(60)),
                    sa.Column("registered", sa.Boolean, nullable=False))
    op.create_table("tickets",
                    sa.Column("id", sa.String(40), primary_key=True),
                    sa.Column("idempotency_key", sa.String(200), unique=True),
                    sa.Column("day", sa.String(10), nullable=False, index=True),
                    sa.Column("number", sa.String(8), nullable=False),
                    sa.Column("topic", sa.String(40), nullable=False),
                    sa.Column("category", sa.String(30), nullable=False),
                    sa.Column("window_id", sa.String(40), nullable=False, index=True),
                    sa.Column("window_agency", sa.String(60), nullable=False),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("persons", sa.Integer, nullable=False),
                    sa.Column("collective", sa.Boolean, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("issued_by", sa.String(120), nullable=False),
                    sa.Column("issued_at", ts, nullable=False),
                    sa.Column("called_at", ts),
                    sa.Column("served_at", ts),
                    sa.Column("served_by", sa.String(120)),
                    sa.Column("announced", sa.Boolean, nullable=False),
                    sa.UniqueConstraint("day", "number", name="uq_tickets_day_number"))
    op.create_table("ticket_counters",
                    sa.Column("day", sa.String(10), primary_key=True),
                    sa.Column("prefix", sa.String(1), primary_key=True),
                    sa.Column("last", sa.Integer, nullable=False))
    op.create_table("duty_changes",
                    sa.Column("day", sa.String(10), primary_key=True),
                    sa.Column("people", sa.JSON, nullable=False),
                    sa.Column("lead", sa.String(60)),
                    sa.Column("changed_by", sa.String(120), nullable=False),
                    sa.Column("changed_at", ts, nullable=False))
    op.create_table("leader_day_changes",
                    sa.Column("day", sa.String(10), primary_key=True),
                    sa.Column("leader", sa.String(60), nullable=False),
                    sa.Column("title", sa.String(60)),
                    sa.Column("changed_by", sa.String(120), nullable=False),
                    sa.Column("changed_at", ts, nullable=False))
    op.create_table("joint_sessions",
                    sa.Column("id", sa.String(40), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("category", sa.String(30)),
                    sa.Column("division", sa.String(6)),
                    sa.Column("agenda", sa.Text, nullable=False),
                    sa.Column("place", sa.Text, nullable=False),
                    sa.Column("scheduled_at", ts, nullable=False, index=True),
                    sa.Column("day", sa.String(10), nullable=False, index=True),
                    sa.Column("status", sa.String(20), nullable=False),
                    sa.Column("invited", sa.JSON, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("opened_by", sa.String(120), nullable=False),
                    sa.Column("opened_at", ts, nullable=False),
                    sa.Column("event_id", sa.String(40), nullable=False),
                    sa.Column("outcome", sa.JSON))
    op.create_table("invitations_out",
                    sa.Column("session_id", sa.String(40), primary_key=True),
                    sa.Column("agency", sa.String(60), primary_key=True),
                    sa.Column("delivery", sa.String(20), nullable=False, index=True),
                    sa.Column("answer", sa.String(20), nullable=False),
                    sa.Column("reason", sa.Text),
                    sa.Column("answered_at", ts),
                    sa.Column("tries", sa.Integer, nullable=False),
                    sa.Column("next_try_at", ts, nullable=False),
                    sa.Column("last_error", sa.Text))
    op.create_table("invitations_in",
                    sa.Column("session_id", sa.String(40), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("centre", sa.String(60), nullable=False),
                    sa.Column("centre_name", sa.Text, nullable=False),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("category", sa.String(30), nullable=False),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("agenda", sa.Text, nullable=False),
                    sa.Column("scheduled_at", sa.String(40), nullable=False),
                    sa.Column("place", sa.Text, nullable=False),
                    sa.Column("invited", sa.JSON, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("reason", sa.Text),
                    sa.Column("received_at", ts, nullable=False),
                    sa.Column("answered_by", sa.String(120)),
                    sa.Column("answered_at", ts))
    op.create_table("hearings",
                    sa.Column("id", sa.String(40), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("subject", sa.Text, nullable=False),
                    sa.Column("place", sa.Text, nullable=False),
                    sa.Column("scheduled_at", ts, nullable=False, index=True),
                    sa.Column("day", sa.String(10), nullable=False, index=True),
                    sa.Column("participants", sa.JSON, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False),
                    sa.Column("attendance", sa.JSON),
                    sa.Column("conclusion", sa.Text),
                    sa.Column("scheduled_by", sa.String(120), nullable=False),
                    sa.Column("held_at", ts))
    op.create_table("leader_cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("day", sa.String(10), nullable=False, index=True),
                    sa.Column("leader", sa.String(60), nullable=False),
                    sa.Column("title", sa.String(60)),
                    sa.Column("taken_by", sa.String(120), nullable=False),
                    sa.Column("taken_at", ts, nullable=False))


def downgrade() -> None:
    for t in ("leader_cases", "hearings", "invitations_in", "invitations_out", "joint_sessions", "leader_day_changes",
              "duty_changes", "ticket_counters", "tickets", "known_cases", "audit_log", "inbox", "outbox"):
        op.drop_table(t)
