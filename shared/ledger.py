"""The shared case ledger: event types and the fold of a case's events into its state.

Every node applies the same events in the same (stream) order with this pure function, so every
node that shares a case shows the same holder, status and history."""
from __future__ import annotations

from datetime import datetime, timedelta

from shared import risk

REGISTERED = "case.registered"          # 登记
ROUTED = "case.routed"                  # 分办决定 (rule and reasons)
OFFERED = "case.offered"                # 交办/转送
SIGNED_FOR = "case.signed_for"          # 签收
RETURNED = "case.returned"              # 退回
MANUAL_REVIEW = "case.manual_review"    # 转信访局人工分办
REPEAT_LINKED = "case.repeat_linked"    # 重信重访 linked to this case
OFFER_UNANSWERED = "case.offer_unanswered"  # the target did not answer the offer: flagged for supervision

STATUS_LABELS = {"registered": "已登记", "offered": "已交办待签收", "in_handling": "已签收办理中",
                 "returned": "已退回待重新分办", "manual_review": "待信访局人工分办"}

ACCEPTANCE_NOTICE_DAYS = 15  # 受理告知: 15 days from registration


def apply(state: dict | None, ev: dict) -> dict:
    """Fold one event (an Event as dict) into the case state; unknown types only extend the history."""
    t, p = ev["type"], ev["payload"]
    s = dict(state or {})
    s["audience"] = sorted(set(s.get("audience", [])) | set(ev.get("audience", [])))
    if t == REGISTERED:
        s.update(case_id=ev["case_id"], status="registered", origin=ev["agency"], holder=ev["agency"],
                 lead=None, co_handlers=[], offered_to=None, returns=0, repeat_count=0,
                 registered_at=ev["time"], category=p["category"], division=p["division"], channel=p["channel"],
                 title=p["title"], persons=p["persons"], collective=p.get("collective", False),
                 flags=list(p.get("flags", [])), risk=p.get("risk", {"level": None, "reasons": []}),
                 query_code_hash=p.get("query_code_hash"), reported_agency=p.get("reported_agency"),
                 routing=None)
    elif t == ROUTED:
        s["routing"] = {k: p.get(k) for k in ("target", "lead", "co_handlers", "rule", "reason", "attempt")}
        s["flags"] = sorted(set(s.get("flags", [])) | set(p.get("flags", [])))
    elif t == OFFERED:
        s.update(status="offered", offered_to=p["to"], lead=p.get("lead") or p["to"],
                 co_handlers=list(p.get("co_handlers", [])))
    elif t == SIGNED_FOR:
        if s.get("offered_to") == ev["agency"]:  # a stale or foreign sign-for cannot fork the history
            s.update(status="in_handling", holder=ev["agency"], offered_to=None, signed_at=ev["time"])
    elif t == RETURNED:
        if s.get("offered_to") == ev["agency"]:
            s.update(status="returned", offered_to=None, returns=s.get("returns", 0) + 1,
                     last_return={"by": ev["agency"], "reason": p.get("reason", "")})
    elif t == MANUAL_REVIEW:
        s.update(status="manual_review", holder=p["bureau"], offered_to=None)
    elif t == OFFER_UNANSWERED:
        s["flags"] = sorted(set(s.get("flags", [])) | {"offer_unanswered"})
    elif t == REPEAT_LINKED:
        s["repeat_count"] = s.get("repeat_count", 0) + 1
        s["risk"] = risk.with_repeat(s.get("risk") or {}, s["repeat_count"])
        if "repeat" not in s.get("flags", []):
            s["flags"] = sorted(set(s.get("flags", [])) | {"repeat"})
    s["version"] = s.get("version", 0) + 1
    return s


def deadlines(state: dict, now: datetime) -> list[dict]:
    """Statutory clocks visible on the case (running / met / breached) with their due dates."""
    registered = datetime.fromisoformat(state["registered_at"])
    due = registered + timedelta(days=ACCEPTANCE_NOTICE_DAYS)
    met = state.get("status") == "in_handling"
    clock = "met" if met else ("breached" if now > due else "running")
    return [{"name": "acceptance_notice", "label": "受理告知（15日）", "due": due.isoformat(), "state": clock}]
