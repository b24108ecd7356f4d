"""intake: registrations remember 三级终结, so a repeat of a terminated matter is declined at any desk

Revision ID: intake_0002
Revises: intake_0001
"""
import sqlalchemy as sa
from alembic import op

revision = "intake_0002"
down_revision = "intake_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registrations") as t:
        t.add_column(sa.Column("terminated_at", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registrations") as t:
        t.drop_column("terminated_at")
