"""supervision: sv_case_summaries — what each case contributes to the 考核 figures

The assessment used to fold every event of every case in the period on each request (67 s and 2.3 GB
for a year at a million cases). The projection now keeps one narrow summary row per case
(services.supervision.domain.assessment.summary) and the assessment adds them up with SQL. Existing
cases are backfilled here from their folded state and the time of their latest event.

Revision ID: supervision_0002
Revises: supervision_0001
"""
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from services.supervision.domain.assessment import summary, utc

revision = "supervision_0002"
down_revision = "supervision_0001"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    day, flag = sa.String(10), sa.Boolean
    summaries = op.create_table(
        "sv_case_summaries",
        sa.Column("case_id", sa.String(40), primary_key=True),
        sa.Column("registered_day", day, nullable=False, index=True),
        sa.Column("holder", sa.String(60), nullable=False),
        sa.Column("division", sa.String(6), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acceptance_notice_due", day, nullable=False),
        sa.Column("acceptance_notice_result", day),
        sa.Column("handling_due", day), sa.Column("handling_result", day),
        sa.Column("review_decision_due", day), sa.Column("review_decision_result", day),
        sa.Column("re_review_decision_due", day), sa.Column("re_review_decision_result", day),
        *[sa.Column(name, flag, nullable=False)
          for name in ("replied", "rated", "satisfied", "review_requested", "repeat", "skipped_level")],
        sa.Column("orders", sa.Integer, nullable=False), sa.Column("listed", sa.Integer, nullable=False))
    backfill(op.get_bind(), summaries)


def backfill(conn, summaries: sa.Table) -> None:
    """A summary row for every case, a page of cases at a time (by case_id, never all at once)."""
    cases = sa.table("sv_cases", sa.column("case_id"), sa.column("holder"), sa.column("division"),
                     sa.column("state", sa.JSON))
    events = sa.table("sv_events", sa.column("case_id"), sa.column("time"))
    last_id = ""
    while page := conn.execute(sa.select(cases.c.case_id, cases.c.holder, cases.c.division, cases.c.state)
                               .where(cases.c.case_id > last_id).order_by(cases.c.case_id).limit(BATCH)).all():
        last: dict[str, datetime] = {}
        for case_id, time in conn.execute(sa.select(events.c.case_id, events.c.time)
                                          .where(events.c.case_id.in_([r.case_id for r in page]))):
            t = utc(time)
            last[case_id] = max(last.get(case_id, t), t)
        conn.execute(summaries.insert(), [
            {"case_id": r.case_id, "holder": r.holder, "division": r.division,
             "last_event_at": last.get(r.case_id) or utc(r.state["registered_at"]), **summary(r.state)}
            for r in page])
        last_id = page[-1].case_id


def downgrade() -> None:
    op.drop_table("sv_case_summaries")
