"""intake: read model, petitioners, idempotency keys, outbox/inbox/audit

Revision ID: intake_0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

from shared.db.migrations import create_plumbing_tables

revision = "intake_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_plumbing_tables()
    op.create_table("cases",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("status", sa.String(30), nullable=False, index=True),
                    sa.Column("category", sa.String(30), index=True),
                    sa.Column("division", sa.String(6), nullable=False, index=True),
                    sa.Column("holder", sa.String(60), nullable=False, index=True),
                    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, index=True),
                    sa.Column("state", sa.JSON, nullable=False))
    op.create_table("case_events",
                    sa.Column("pos", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("event_id", sa.String(40), nullable=False, unique=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("stream_seq", sa.Integer),
                    sa.Column("type", sa.String(40), nullable=False),
                    sa.Column("agency", sa.String(60), nullable=False),
                    sa.Column("actor", sa.String(120), nullable=False),
                    sa.Column("time", sa.String(40), nullable=False),
                    sa.Column("payload", sa.JSON, nullable=False))
    op.create_table("query_codes",
                    sa.Column("code_hash", sa.String(64), primary_key=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True))
    op.create_table("registrations",
                    sa.Column("case_id", sa.String(40), primary_key=True),
                    sa.Column("pseudonym", sa.String(64), index=True),
                    sa.Column("category", sa.String(30)),
                    sa.Column("division", sa.String(6), nullable=False),
                    sa.Column("text", sa.Text, nullable=False),
                    sa.Column("audience", sa.JSON, nullable=False))
    op.create_table("petitioners",
                    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("case_id", sa.String(40), nullable=False, index=True),
                    sa.Column("role", sa.String(20), nullable=False),
                    sa.Column("name_enc", sa.Text, nullable=False),
                    sa.Column("id_number_enc", sa.Text),
                    sa.Column("phone_enc", sa.Text),
                    sa.Column("address_enc", sa.Text))
    op.create_table("idempotency_keys",
                    sa.Column("key", sa.String(200), primary_key=True),
                    sa.Column("request_hash", sa.String(64), nullable=False),
                    sa.Column("response", sa.JSON, nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))


def downgrade() -> None:
    for t in ("idempotency_keys", "petitioners", "registrations", "query_codes", "case_events", "cases",
              "audit_log", "inbox", "outbox"):
        op.drop_table(t)
