"""intake: the dashboard's columns on cases (registered_day, collective, repeat, orders, open_due, late_days)
and its volume counters (case_volumes)

/ui/data/overview used to load every case of the range with its state and send one row per case to the
browser (15 s and 2 GB for a year at a million cases). The projection now keeps what a case contributes
to the dashboard on its row (services.intake.domain.dashboard.summary) and in the day's and month's
counters of case_volumes; the overview reads the counters and a top-N over open_due / late_days. Existing
cases are backfilled from their state, the counters from the backfilled columns.

Revision ID: intake_0004
Revises: intake_0003
"""
import sqlalchemy as sa
from alembic import op

from services.intake.domain.dashboard import summary

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None

BATCH = 1000
COLUMNS = [("registered_day", sa.String(10)), ("collective", sa.Boolean), ("repeat", sa.Boolean),
           ("orders", sa.Integer), ("open_due", sa.String(10)), ("late_days", sa.Integer)]


def upgrade() -> None:
    op.create_table("case_volumes",
                    sa.Column("period", sa.String(10), primary_key=True),  # YYYY-MM-DD or YYYY-MM
                    sa.Column("category", sa.String(30), primary_key=True),
                    sa.Column("division", sa.String(6), primary_key=True),
                    sa.Column("holder", sa.String(60), primary_key=True),
                    *[sa.Column(c, sa.Integer, nullable=False) for c in ("cases", "collective", "repeat")])
    with op.batch_alter_table("cases") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_))
    backfill(op.get_bind())
    op.create_index("ix_cases_registered_day", "cases", ["registered_day", "division"])
    op.create_index("ix_cases_open_due", "cases", ["open_due", "registered_day", "division"])
    op.create_index("ix_cases_late_days", "cases", ["late_days", "registered_day", "division"])


def count_volumes(conn) -> None:
    """case_volumes from the cases' columns: per day, then per month."""
    cases = sa.table("cases", *[sa.column(c) for c in ("registered_day", "category", "division", "holder",
                                                        "collective", "repeat")])
    volumes = sa.table("case_volumes", *[sa.column(c) for c in ("period", "category", "division", "holder", "cases",
                                                                 "collective", "repeat")])
    flag = lambda c: sa.func.sum(sa.case((c, 1), else_=0))  # noqa: E731
    for period in (cases.c.registered_day, sa.func.substr(cases.c.registered_day, 1, 7)):
        category = sa.func.coalesce(cases.c.category, "")
        conn.execute(volumes.insert().from_select(
            ["period", "category", "division", "holder", "cases", "collective", "repeat"],
            sa.select(period, category, cases.c.division, cases.c.holder, sa.func.count(), flag(cases.c.collective),
                      flag(cases.c.repeat)).where(cases.c.registered_day.is_not(None))
            .group_by(period, category, cases.c.division, cases.c.holder)))


def backfill(conn) -> None:
    """Every case's columns from its state, a page of cases at a time (by case_id, never all at once)."""
    cases = sa.table("cases", sa.column("case_id"), sa.column("state", sa.JSON),
                     *[sa.column(name) for name, _ in COLUMNS])
    update = (cases.update().where(cases.c.case_id == sa.bindparam("id"))
              .values({name: sa.bindparam(name) for name, _ in COLUMNS}))
    last = ""
    while page := conn.execute(sa.select(cases.c.case_id, cases.c.state).where(cases.c.case_id > last)
                               .order_by(cases.c.case_id).limit(BATCH)).all():
        conn.execute(update, [{"id": r.case_id, **summary(r.state)} for r in page])
        last = page[-1].case_id
    count_volumes(conn)


def downgrade() -> None:
    for name in ("ix_cases_late_days", "ix_cases_open_due", "ix_cases_registered_day"):
        op.drop_index(name, "cases")
    with op.batch_alter_table("cases") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
    op.drop_table("case_volumes")
