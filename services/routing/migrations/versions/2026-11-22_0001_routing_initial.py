"""routing: routed cases, offers out and in, outbox/inbox/audit

Revision ID: routing_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db.migrations import create_plumbing_tables

revision = "routing_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables()
    ts = sa.DateTime(timezone=True)
    op.create_table("routed_cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("category", sa.String(30)),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("text", sa.Text, nullable=False),
                    sa.Column("reported_agency", sa.String(60)),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("attempt", sa.Integer, nullable=False),
                    sa.Column("returns", sa.Integer, nullable=False),
                    sa.Column("excluded", sa.JSON, nullable=False),
                    sa.Column("decisions", sa.JSON, nullable=False))
    op.create_table("offers_out",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("attempt", sa.Integer, primary_key=True),
                    sa.Column("target", sa.String(60), nullable=False),
                    sa.Column("event_id", sa.String(40), nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("tries", sa.Integer, nullable=False),
                    sa.Column("next_try_at", ts, nullable=False),
                    sa.Column("last_error", sa.Text),
                    sa.Column("flagged", sa.Boolean, nullable=False))
    op.create_table("offers_in",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("attempt", sa.Integer, primary_key=True),
                    sa.Column("from_agency", sa.String(60), nullable=False),
                    sa.Column("category", sa.String(30), nullable=False),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("title", sa.Text, nullable=False),
                    sa.Column("rule", sa.String(60), nullable=False),
                    sa.Column("reason", sa.Text, nullable=False),
                    sa.Column("skipped_level", sa.Boolean, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False),
                    sa.Column("status", sa.String(20), nullable=False, index=True),
                    sa.Column("answer_reason", sa.Text),
                    sa.Column("received_at", ts, nullable=False))


def downgrade() -> None:
    for t in ("offers_in", "offers_out", "routed_cases", "audit_log", "inbox", "outbox"):
        op.drop_table(t)
