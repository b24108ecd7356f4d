"""supervision: sv_case_summaries and sv_assessment_counts — what each case contributes to the 考核 figures

The assessment used to fold every event of every case in the period on each request (67 s and 2.3 GB
for a year at a million cases). The projection now keeps one narrow summary row per case
(services.supervision.domain.assessment.summary) and, per day and month, holder and division, the sums
of what does not depend on the evaluation day (assessment.settled_tally); the assessment reads the
counters and adds the clocks still running by then. Existing cases are backfilled here from their folded
state and the time of their latest event.

Revision ID: supervision_0002
Revises: supervision_0001
"""
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from services.supervision.domain.assessment import COUNTERS, settled_tally, summary, utc

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
        sa.Column("orders", sa.Integer, nullable=False), sa.Column("listed", sa.Integer, nullable=False),
        sa.Column("running_due", day))
    op.create_index("ix_sv_case_summaries_running_due", "sv_case_summaries", ["running_due", "registered_day"])
    op.create_index("ix_sv_case_summaries_last_event_at", "sv_case_summaries", ["last_event_at", "registered_day"])
    counts = op.create_table(
        "sv_assessment_counts",
        sa.Column("period", day, primary_key=True),  # YYYY-MM-DD or YYYY-MM
        sa.Column("holder", sa.String(60), primary_key=True),
        sa.Column("division", sa.String(6), primary_key=True),
        *[sa.Column(name, sa.Integer, nullable=False) for name in COUNTERS])
    backfill(op.get_bind(), summaries, counts)


def backfill(conn, summaries: sa.Table, counts: sa.Table) -> None:
    """A summary row for every case, a page of cases at a time (by case_id, never all at once), and the
    counters of their settled tallies."""
    totals: dict[tuple[str, str, str], list[int]] = {}
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
        rows = [{"case_id": r.case_id, "holder": r.holder, "division": r.division,
                 "last_event_at": last.get(r.case_id) or utc(r.state["registered_at"]), **summary(r.state)}
                for r in page]
        conn.execute(summaries.insert(), rows)
        for row in rows:
            tally = settled_tally(row)
            for period in (row["registered_day"], row["registered_day"][:7]):
                total = totals.setdefault((period, row["holder"], row["division"]), [0] * len(COUNTERS))
                for i, name in enumerate(COUNTERS):
                    total[i] += tally[name]
        last_id = page[-1].case_id
    if totals:
        conn.execute(counts.insert(), [{"period": p, "holder": h, "division": d, **dict(zip(COUNTERS, values))}
                                       for (p, h, d), values in totals.items()])


def downgrade() -> None:
    op.drop_table("sv_assessment_counts")
    op.drop_table("sv_case_summaries")
