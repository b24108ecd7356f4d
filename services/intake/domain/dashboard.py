"""督办看板: what one case contributes to the dashboard's figures, kept on its row of the read model.

The dashboard asks for volumes (by registration day, category, division, holder), collective and repeat
petitions and the most overdue cases over ranges of up to years of cases; the server answers with SQL
sums and a top-N over these columns instead of loading every case. Overdue depends on the day it is
asked: a clock whose act is done has a fixed result (its days late), a clock still running is breached
once its due date has passed — so the row keeps the done clocks' worst lateness and the earliest due
date among the running ones."""
from __future__ import annotations

from datetime import date, datetime, timezone

from shared import ledger

_LONG_AGO = datetime(1970, 1, 1, tzinfo=timezone.utc)  # as of then no running clock is late yet


def summary(state: dict) -> dict:
    """The dashboard columns of a case row (services/intake/adapters/orm.py CaseRow), from its state."""
    supervised = [c for c in ledger.clocks(state, _LONG_AGO) if c["supervised"]]
    return {"registered_day": ledger.local_date(state["registered_at"]).isoformat(),
            "collective": bool(state.get("collective")), "repeat": state.get("repeat_count", 0) > 0,
            "orders": len(state.get("orders", [])),
            "open_due": min((c["due_date"] for c in supervised if not c["done_at"]), default=None),
            "late_days": max((c["days_late"] for c in supervised if c["done_at"]), default=0)}


def volume_key(registered_day: str | None, category: str | None, division: str, holder: str,
               collective: bool | None, repeat: bool | None) -> tuple | None:
    """Where a case counts in the volumes (CaseVolumeRow): (day, category or '', division, holder,
    collective 0/1, repeat 0/1); None before it has a registration day."""
    if registered_day is None:
        return None
    return registered_day, category or "", division, holder, int(bool(collective)), int(bool(repeat))


def days_late(open_due: str | None, late_days: int, today: date) -> int:
    """The case's worst lateness on `today` (0: nothing overdue), from its summary columns."""
    running = (today - date.fromisoformat(open_due)).days if open_due else 0
    return max(late_days or 0, running, 0)
