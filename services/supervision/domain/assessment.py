"""考核 assessment per agency and per division over a date range, computed from ledger events only.

Population: the cases this node shares that were registered (登记) on a Beijing calendar day within
[from, to], whose division lies within `division` (if given) and whose responsible body — the holder
(承办机构) as of the evaluation moment — is `agency` (if given). Every case is evaluated as of
`as_of` = min(end of the `to` day, now): its events up to that moment are folded with
shared.ledger.apply and its clocks read with shared.ledger.clocks, so a node that shares the same cases
computes the same figures, and a past period's figures do not change as time goes on.

Rates (numerator / denominator; the rate is null when the denominator is 0):
* 及时受理率 timely_acceptance = cases whose 受理告知 (受理 or 不予受理) was given within 15 days of
  registration / cases whose 受理告知 clock has ended (given, or its 15 days passed) — clock met / (met + breached).
* 按期办结率 on_time_completion = accepted cases replied within 60 days (+ an approved extension) /
  accepted cases whose 办理 clock has ended (replied, or overdue) — clock met / (met + breached).
* 参评率 evaluation_participation = replied cases with at least one satisfaction rating / replied cases.
* 满意率 satisfaction = rated cases whose latest rating is 满意 or 基本满意 / rated cases.
* 一次办结率 first_time_resolution = replied cases with no 复查 request and no repeat petition
  (重信重访) on the ledger / replied cases.
* 重复信访率 repeat_rate = cases with at least one repeat petition linked (case.repeat_linked) / cases.
* 越级访数 skipped_level_visits = cases routed with the skipped_level flag (lodged above their level).
* overdue: breached clocks by clock (受理告知, 办理答复, 复查意见, 复核意见) and in total; supervision_orders
  = 督办 orders issued, listed_supervision = of which 挂牌督办.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timezone
from typing import Callable, Iterable

from shared import divisions, ledger

RATE_LABELS = {"timely_acceptance": "及时受理率", "on_time_completion": "按期办结率",
               "evaluation_participation": "参评率", "satisfaction": "满意率",
               "first_time_resolution": "一次办结率", "repeat_rate": "重复信访率"}
SATISFIED = ("满意", "基本满意")


def end_of_day(d: date) -> datetime:
    return datetime.combine(d, time(23, 59, 59, 999999), ledger.CST)


def state_as_of(events: Iterable[dict], as_of: datetime) -> dict | None:
    """Fold a case's events (ledger order) that happened by `as_of`."""
    state = None
    for ev in events:
        if datetime.fromisoformat(ev["time"]) <= as_of:
            state = ledger.apply(state, ev)
    return state if state and state.get("registered_at") else None


@dataclass
class CaseFacts:
    """What one case contributes to the figures, as of the evaluation moment."""
    case_id: str
    agency: str
    division: str
    acceptance: str | None      # met | breached | None (still running)
    handling: str | None        # met | breached | None (running, or not accepted)
    replied: bool
    rated: bool
    satisfied: bool
    review_requested: bool
    repeat: bool
    skipped_level: bool
    breached: list[str] = field(default_factory=list)
    orders: int = 0
    listed: int = 0


def facts(state: dict, as_of: datetime) -> CaseFacts:
    cl = {c["name"]: c for c in ledger.clocks(state, as_of)}
    ended = lambda name: cl[name]["state"] if name in cl and cl[name]["state"] in ("met", "breached") else None  # noqa: E731
    ratings = state.get("ratings", [])
    orders = state.get("orders", [])
    return CaseFacts(
        case_id=state["case_id"], agency=state["holder"], division=state["division"],
        acceptance=ended("acceptance_notice"), handling=ended("handling"), replied=bool(state.get("reply")),
        rated=bool(ratings), satisfied=bool(ratings) and ratings[-1]["rating"] in SATISFIED,
        review_requested=bool(state.get("review")), repeat=state.get("repeat_count", 0) > 0,
        skipped_level="skipped_level" in state.get("flags", []),
        breached=[c["name"] for c in cl.values() if c["supervised"] and c["state"] == "breached"],
        orders=len(orders), listed=sum(1 for o in orders if o["level"] == "挂牌督办"))


def _rate(n: int, d: int) -> dict:
    return {"numerator": n, "denominator": d, "rate": round(n / d, 4) if d else None}


@dataclass
class Tally:
    """The counters behind the figures of a group of cases: what `metrics` needs, nothing per case.
    Summed per case (CaseFacts) or by SQL per (agency, division) group (handlers.assessment_report)."""
    cases: int = 0
    acceptance_met: int = 0
    acceptance_ended: int = 0
    handling_met: int = 0
    handling_ended: int = 0
    replied: int = 0
    replied_rated: int = 0
    replied_satisfied: int = 0      # replied, rated, latest rating 满意/基本满意
    replied_first_time: int = 0     # replied, no 复查 request, no repeat petition
    repeat: int = 0
    skipped_level: int = 0
    breached_acceptance_notice: int = 0
    breached_handling: int = 0
    breached_review_decision: int = 0
    breached_re_review_decision: int = 0
    orders: int = 0
    listed: int = 0

    def add_case(self, c: CaseFacts) -> None:
        self.cases += 1
        self.acceptance_met += c.acceptance == "met"
        self.acceptance_ended += c.acceptance is not None
        self.handling_met += c.handling == "met"
        self.handling_ended += c.handling is not None
        self.replied += c.replied
        self.replied_rated += c.replied and c.rated
        self.replied_satisfied += c.replied and c.rated and c.satisfied
        self.replied_first_time += c.replied and not c.review_requested and not c.repeat
        self.repeat += c.repeat
        self.skipped_level += c.skipped_level
        for name in c.breached:
            setattr(self, f"breached_{name}", getattr(self, f"breached_{name}") + 1)
        self.orders += c.orders
        self.listed += c.listed

    def __iadd__(self, other: Tally) -> Tally:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + (getattr(other, f.name) or 0))
        return self


def metrics(t: Tally) -> dict:
    overdue = {name: getattr(t, f"breached_{name}") for name in ledger.SUPERVISED_CLOCKS}
    return {
        "cases": t.cases,
        "timely_acceptance": _rate(t.acceptance_met, t.acceptance_ended),
        "on_time_completion": _rate(t.handling_met, t.handling_ended),
        "evaluation_participation": _rate(t.replied_rated, t.replied),
        "satisfaction": _rate(t.replied_satisfied, t.replied_rated),
        "first_time_resolution": _rate(t.replied_first_time, t.replied),
        "repeat_rate": _rate(t.repeat, t.cases),
        "skipped_level_visits": t.skipped_level,
        "overdue": {**overdue, "total": sum(overdue.values())},
        "supervision_orders": t.orders,
        "listed_supervision": t.listed,
    }


def in_population(state: dict, *, date_from: date, date_to: date, division: str | None, agency: str | None) -> bool:
    if not date_from <= ledger.local_date(state["registered_at"]) <= date_to:
        return False
    if division and not divisions.contains(division, state["division"]):
        return False
    return not agency or state["holder"] == agency


def assess(case_events: Iterable[list[dict]], *, date_from: date, date_to: date, now: datetime,
           division: str | None = None, agency: str | None = None,
           names: Callable[[str], str] = lambda a: a) -> dict:
    """The figures for the population (see the module docstring), in total, per agency and per division,
    folding every case's events. The reference: the service computes the same from per-case summary
    columns (handlers.assessment_report), and a test holds the two equal."""
    as_of = evaluation_moment(date_to, now)
    groups: dict[tuple[str, str], Tally] = {}
    case_ids = []
    for events in case_events:
        state = state_as_of(events, as_of)
        if state is None or not in_population(state, date_from=date_from, date_to=date_to, division=division,
                                               agency=agency):
            continue
        c = facts(state, as_of)
        groups.setdefault((c.agency, c.division), Tally()).add_case(c)
        case_ids.append(c.case_id)
    return report(groups, date_from=date_from, date_to=date_to, as_of=as_of, division=division, agency=agency,
                  names=names, case_ids=case_ids)


def evaluation_moment(date_to: date, now: datetime) -> datetime:
    return min(end_of_day(date_to), now)


def report(groups: dict[tuple[str, str], Tally], *, date_from: date, date_to: date, as_of: datetime,
           division: str | None, agency: str | None, names: Callable[[str], str] = lambda a: a,
           case_ids: Iterable[str] | None = None) -> dict:
    """The report from the tallies of the population's (agency, division) groups."""
    total, by_agency, by_division = Tally(), {}, {}
    for (a, d), t in groups.items():
        total += t
        for group, key in ((by_agency, a), (by_division, d)):
            group.setdefault(key, Tally())
            group[key] += t
    out = {
        "from": date_from.isoformat(), "to": date_to.isoformat(), "as_of": as_of.isoformat(),
        "division": division, "agency": agency,
        "total": metrics(total),
        "by_agency": [{"agency": a, "agency_name": names(a), **metrics(by_agency[a])} for a in sorted(by_agency)],
        "by_division": [{"division": d, "division_name": divisions.name(d), **metrics(by_division[d])}
                        for d in sorted(by_division)],
    }
    if case_ids is not None:
        out["cases"] = sorted(case_ids)
    return out


# --- per-case summary rows and the counters, kept by the projection ---------------------------------

_LONG_AGO = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc(t: str | datetime) -> datetime:
    """An instant (ISO string or datetime; naive means UTC, as SQLite gives it back) in UTC."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def summary(state: dict) -> dict:
    """What a case contributes to the figures, as far as it does not depend on the evaluation moment:
    the registration day, each supervised clock's due date and — once its act is done — its result
    (met | breached), and the flags and counts of CaseFacts. Stored on sv_cases at every fold; the
    moment only decides whether a clock still running is breached by then (its due date passed).
    (Read as of 1970, no clock has run late yet: only the clocks whose act is done have a result.)"""
    cl = {c["name"]: c for c in ledger.clocks(state, _LONG_AGO)}
    out: dict = {"registered_day": ledger.local_date(state["registered_at"]).isoformat()}
    for name in ledger.SUPERVISED_CLOCKS:
        c = cl.get(name)
        out[f"{name}_due"] = c["due_date"] if c else None
        out[f"{name}_result"] = c["state"] if c and c["done_at"] else None
    ratings, orders = state.get("ratings", []), state.get("orders", [])
    out.update(replied=bool(state.get("reply")), rated=bool(ratings),
               satisfied=bool(ratings) and ratings[-1]["rating"] in SATISFIED,
               review_requested=bool(state.get("review")), repeat=state.get("repeat_count", 0) > 0,
               skipped_level="skipped_level" in state.get("flags", []), orders=len(orders),
               listed=sum(1 for o in orders if o["level"] == "挂牌督办"))
    out["running_due"] = running_due(out)
    return out


CSV_HEADER = ["维度", "代码", "名称", "件数", *[f"{v}" for v in RATE_LABELS.values()],
              *[f"{v}（分子/分母）" for v in RATE_LABELS.values()], "越级访数", "超期件数（受理告知）",
              "超期件数（办理答复）", "超期件数（复查意见）", "超期件数（复核意见）", "超期合计", "督办件数", "挂牌督办件数"]


def to_csv(report: dict) -> str:
    """The same figures as CSV (UTF-8 with BOM so spreadsheet programs read the Chinese headers)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    rows = [("合计", report["division"] or "", report["agency"] or "全部", report["total"])]
    rows += [("机构", r["agency"], r["agency_name"], r) for r in report["by_agency"]]
    rows += [("区划", r["division"], r["division_name"], r) for r in report["by_division"]]
    for scope, code, name, m in rows:
        rates = [m[k]["rate"] for k in RATE_LABELS]
        w.writerow([scope, code, name, m["cases"], *["" if r is None else f"{r:.4f}" for r in rates],
                    *[f"{m[k]['numerator']}/{m[k]['denominator']}" for k in RATE_LABELS], m["skipped_level_visits"],
                    *[m["overdue"][c] for c in ledger.SUPERVISED_CLOCKS], m["overdue"]["total"],
                    m["supervision_orders"], m["listed_supervision"]])
    return "\ufeff" + buf.getvalue()


COUNTERS = tuple(f.name for f in fields(Tally))


def settled_tally(summary: dict) -> dict[str, int]:
    """A case's Tally from its summary row as far as it does not depend on the evaluation day: a clock still
    running adds nothing here (it counts once its due date is before that day, see running_due)."""
    result = lambda name: summary[f"{name}_result"]  # noqa: E731
    replied, rated = bool(summary["replied"]), bool(summary["rated"])
    return {"cases": 1,
            "acceptance_met": int(result("acceptance_notice") == "met"),
            "acceptance_ended": int(result("acceptance_notice") is not None),
            "handling_met": int(result("handling") == "met"), "handling_ended": int(result("handling") is not None),
            "replied": int(replied), "replied_rated": int(replied and rated),
            "replied_satisfied": int(replied and rated and bool(summary["satisfied"])),
            "replied_first_time": int(replied and not summary["review_requested"] and not summary["repeat"]),
            "repeat": int(bool(summary["repeat"])), "skipped_level": int(bool(summary["skipped_level"])),
            **{f"breached_{name}": int(result(name) == "breached") for name in ledger.SUPERVISED_CLOCKS},
            "orders": summary["orders"], "listed": summary["listed"]}


def running_due(summary: dict) -> str | None:
    """The earliest due date among the case's supervised clocks still running (None: none runs)."""
    return min((summary[f"{n}_due"] for n in ledger.SUPERVISED_CLOCKS
                if summary[f"{n}_due"] and summary[f"{n}_result"] is None), default=None)
