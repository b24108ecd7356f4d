"""supervision: cases, events, notices, documents, meta, outbox/inbox/audit

Revision ID: supervision_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db.migrations import create_plumbing_tables

revision = "supervision_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables()
    ts = sa.DateTime(timezone=True)
    op.create_table("sv_meta",
                    sa.Column("key", sa.String(40), primary_key=True),
                    sa.Column("value", sa.String(200), nullable=False))
    op.create_table("sv_cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("status", sa.String(30), nullable=False, index=True),
                    sa.Column("division", sa.String(6), nullable=False, index=True),
                    sa.Column("holder", sa.String(60), nullable=False, index=True),
                    sa.Column("supervisor", sa.String(60), nullable=False, index=True),
                    sa.Column("leader", sa.String(60), index=True),
                    sa.Column("registered_at", ts, nullable=False, index=True),
                    sa.Column("next_check", sa.String(10), index=True),
                    sa.Column("state", sa.JSON, nullable=False))
    op.create_table("sv_events",
                    sa.Column("pos", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("event_id", sa.String(40), nullable=False, unique=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("stream_seq", sa.Integer),
                    sa.Column("type", sa.String(40), nullable=False),
                    sa.Column("agency", sa.String(60), nullable=False),
                    sa.Column("actor", sa.String(120), nullable=False),
                    sa.Column("time", sa.String(40), nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("payload", sa.JSON, nullable=False))
    op.create_table("sv_notices",
                    sa.Column("event_id", sa.String(40), primary_key=True),
                    sa.Column("kind", sa.String(20), nullable=False, index=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("clock", sa.String(30), nullable=False),
                    sa.Column("level", sa.String(10)),
                    sa.Column("addressed_to", sa.String(60), nullable=False, index=True),
                    sa.Column("supervisor", sa.String(60), nullable=False, index=True),
                    sa.Column("due_date", sa.String(10), nullable=False),
                    sa.Column("days_late", sa.Integer, nullable=False),
                    sa.Column("issued_at", sa.String(40), nullable=False),
                    sa.Column("payload", sa.JSON, nullable=False))
    op.create_table("sv_documents",
                    sa.Column("id", sa.String(40), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("kind", sa.String(20), nullable=False),
                    sa.Column("title", sa.String(200), nullable=False),
                    sa.Column("text", sa.Text, nullable=False),
                    sa.Column("sha256", sa.String(64), nullable=False),
                    sa.Column("agency", sa.String(60), nullable=False),
                    sa.Column("actor", sa.String(120), nullable=False),
                    sa.Column("issued_at", sa.String(40), nullable=False))


def downgrade() -> None:
    for t in ("sv_documents", "sv_notices", "sv_events", "sv_cases", "sv_meta", "audit_log", "inbox", "outbox"):
        op.drop_table(t)
