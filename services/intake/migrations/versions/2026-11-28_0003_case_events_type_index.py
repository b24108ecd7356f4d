"""intake: index case_events by type

`lianfang_breached_deadlines` on /metrics counts the 责任追究 events of the node's read model
(handlers.count_breached_deadlines) at every scrape; without an index that is a scan of every event —
1.2 s per scrape with a million cases (`make bench`, scale part).

Revision ID: intake_0003
Revises: intake_0002
"""
from alembic import op

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_events_type", "case_events", ["type"])


def downgrade() -> None:
    op.drop_index("ix_case_events_type", "case_events")
