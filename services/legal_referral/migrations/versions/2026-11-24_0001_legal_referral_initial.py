"""legal_referral: classified cases, referrals out and in, receipt serials, relief projection, outbox/inbox/audit

Revision ID: legal_referral_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db.migrations import create_plumbing_tables

revision = "legal_referral_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables()
    ts = sa.DateTime(timezone=True)
    op.create_table("legal_cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("category", sa.String(30)),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("text", sa.Text, nullable=False),
                    sa.Column("reported_agency", sa.String(60)),
                    sa.Column("registered_at", sa.String(40), nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("attempt", sa.Integer, nullable=False),
                    sa.Column("classification", sa.JSON),
                    sa.Column("history", sa.JSON, nullable=False),
                    sa.Column("declines", sa.JSON, nullable=False),
                    sa.Column("excluded_channels", sa.JSON, nullable=False),
                    sa.Column("receipt_no", sa.String(80)),
                    sa.Column("notice", sa.JSON))
    op.create_table("referrals_out",
                    sa.Column("ref_id", sa.String(60), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("attempt", sa.Integer, nullable=False),
                    sa.Column("kind", sa.String(10), nullable=False),
                    sa.Column("target", sa.String(60), nullable=False),
                    sa.Column("event_id", sa.String(40), nullable=False),
                    sa.Column("request", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("tries", sa.Integer, nullable=False),
                    sa.Column("next_try_at", ts, nullable=False),
                    sa.Column("last_error", sa.Text),
                    sa.Column("flagged", sa.Boolean, nullable=False))
    op.create_table("referrals_in",
                    sa.Column("ref_id", sa.String(60), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("attempt", sa.Integer, nullable=False),
                    sa.Column("kind", sa.String(10), nullable=False),
                    sa.Column("from_agency", sa.String(60), nullable=False),
                    sa.Column("channel", sa.String(40), nullable=False),
                    sa.Column("channel_label", sa.String(40), nullable=False),
                    sa.Column("category", sa.String(30), nullable=False),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("rule", sa.String(60), nullable=False),
                    sa.Column("reasons", sa.JSON, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("reported_agency", sa.String(60)),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("receipt_no", sa.String(80), unique=True),
                    sa.Column("answer_reason", sa.Text),
                    sa.Column("amount_requested_fen", sa.Integer),
                    sa.Column("amount_granted_fen", sa.Integer),
                    sa.Column("basis", sa.Text),
                    sa.Column("steps", sa.JSON, nullable=False),
                    sa.Column("history", sa.JSON, nullable=False),
                    sa.Column("received_at", ts, nullable=False))
    op.create_table("receipt_counters",
                    sa.Column("word", sa.String(20), primary_key=True),
                    sa.Column("year", sa.Integer, primary_key=True),
                    sa.Column("last", sa.Integer, nullable=False))
    op.create_table("relief_requests",
                    sa.Column("request_id", sa.String(60), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("kind", sa.String(40), nullable=False),
                    sa.Column("requested_by", sa.String(60), nullable=False),
                    sa.Column("to_agency", sa.String(60), nullable=False, index=True),
                    sa.Column("amount_requested_fen", sa.Integer, nullable=False),
                    sa.Column("amount_granted_fen", sa.Integer),
                    sa.Column("status", sa.String(20), nullable=False),
                    sa.Column("receipt_no", sa.String(80)),
                    sa.Column("reason", sa.Text))


def downgrade() -> None:
    for t in ("relief_requests", "receipt_counters", "referrals_in", "referrals_out", "legal_cases",
              "audit_log", "inbox", "outbox"):
        op.drop_table(t)
