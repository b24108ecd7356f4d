"""The shared case ledger: event types and the fold of a case's events into its state.

Every node applies the same events in the same (stream) order with this pure function, so every
node that shares a case shows the same holder, status and history."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from shared import risk

REGISTERED = "case.registered"          # 登记
ROUTED = "case.routed"                  # 分办决定 as an event of its own: only in ledgers written before 2026-11-29
OFFERED = "case.offered"                # 交办/转送
SIGNED_FOR = "case.signed_for"          # 签收
RETURNED = "case.returned"              # 退回
MANUAL_REVIEW = "case.manual_review"    # 转信访局人工分办
REPEAT_LINKED = "case.repeat_linked"    # 重信重访 linked to this case
REPEAT_DECLINED = "case.repeat_declined"  # 重信重访 on a matter already 三级终结: recorded, not accepted
# 《信访工作条例》第三十五条: after 复核, the same facts and reasons are not accepted again.
TERMINATED_REPEAT_REASON = ("该信访事项已经复核终结（三级终结）。信访人仍以同一事实和理由提出投诉请求的，"
                            "各级机关不再受理（《信访工作条例》第三十五条）。")
OFFER_UNANSWERED = "case.offer_unanswered"  # the target did not answer the offer: flagged for supervision

STATUS_LABELS = {"registered": "已登记", "offered": "已交办待签收", "in_handling": "已签收办理中",
                 "returned": "已退回待重新分办", "manual_review": "待信访局人工分办"}

ACCEPTANCE_NOTICE_DAYS = 15  # 受理告知: 15 days from registration


def apply(state: dict | None, ev: dict) -> dict:
    """Fold one event (an Event as dict) into the case state; unknown types only extend the history."""
    t, p = ev["type"], ev["payload"]
    s = dict(state or {})
    s["audience"] = sorted(set(s.get("audience", [])) | set(ev.get("audience", [])))
    if "routing" in p and t in (OFFERED, MANUAL_REVIEW, LEGAL_HANDOVER):
        _note_routing(s, p["routing"])  # 分办决定 travels with the 交办, 转人工 or 诉访分离 it led to
    if t == REGISTERED:
        s.update(case_id=ev["case_id"], status="registered", origin=ev["agency"], holder=ev["agency"],
                 lead=None, co_handlers=[], offered_to=None, returns=0, repeat_count=0,
                 registered_at=ev["time"], category=p["category"], division=p["division"], channel=p["channel"],
                 title=p["title"], persons=p["persons"], collective=p.get("collective", False),
                 flags=list(p.get("flags", [])), risk=p.get("risk", {"level": None, "reasons": []}),
                 query_code_hash=p.get("query_code_hash"), reported_agency=p.get("reported_agency"),
                 routing=None)
    elif t == ROUTED:
        _note_routing(s, p)
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
    elif t == REPEAT_DECLINED:
        s["declined_repeats"] = s.get("declined_repeats", 0) + 1
    elif t in _HANDLING_REDUCERS:  # 办理、复查复核、督查督办 (below)
        _HANDLING_REDUCERS[t](s, ev, p)
    s["version"] = s.get("version", 0) + 1
    return s


def _note_routing(s: dict, decision: dict) -> None:
    """分办决定: the rule, target and reasons (internal), and its flags (越级 …) on the case."""
    s["routing"] = {k: decision.get(k) for k in ("target", "lead", "co_handlers", "rule", "reason", "attempt")}
    s["flags"] = sorted(set(s.get("flags", [])) | set(decision.get("flags", [])))


def deadlines(state: dict, now: datetime) -> list[dict]:
    """Statutory clocks visible on the case, each with its state (running / extended / met / breached,
    and expired for a petitioner's lapsed application window) and its due date. See `clocks`."""
    return clocks(state, now)


# --- 办理、复查复核、督查督办 (issue 5) ---------------------------------------------------------------
# Status path: in_handling → accepted → replied → review_requested → reviewed → re_review_requested →
# terminated (三级终结); or in_handling → declined (不予受理). The guards below make a stale or foreign
# command a no-op in the fold, the same way SIGNED_FOR is guarded, so no node can fork the history.

ACCEPTED = "case.accepted"                        # 受理 (书面告知 within 15 days of registration)
DECLINED = "case.declined"                        # 不予受理 (with the reason)
REPLIED = "case.replied"                          # 答复: the 信访处理意见书 (text in the payload)
EXTENDED = "case.extended"                        # 延期: once, ≤ 30 days, with the approver
SATISFACTION_RATED = "case.satisfaction_rated"    # 满意度: 满意 / 基本满意 / 不满意 (petitioner or 回访)
REVIEW_REQUESTED = "case.review_requested"        # 复查申请 to the next-higher body (in the audience)
REVIEW_DECIDED = "case.review_decided"            # 复查意见
RE_REVIEW_REQUESTED = "case.re_review_requested"  # 复核申请
RE_REVIEW_DECIDED = "case.re_review_decided"      # 复核意见 → terminated (三级终结)
LEADER_ASSIGNED = "case.leader_assigned"          # 领导包案
SUPERVISION_REMINDER = "case.supervision_reminder"  # 催办 (N days before a deadline)
SUPERVISION_ORDER = "case.supervision_order"      # 督办 / 挂牌督办 (a breached deadline)
ACCOUNTABILITY = "case.accountability"            # 责任追究 record of a breach (body, deadline, days late)

STATUS_LABELS.update({"accepted": "已受理办理中", "declined": "不予受理", "replied": "已答复",
                      "review_requested": "复查中", "reviewed": "已复查", "re_review_requested": "复核中",
                      "terminated": "三级终结"})
EVENT_LABELS = {ACCEPTED: "受理", DECLINED: "不予受理", REPLIED: "答复（信访处理意见书）", EXTENDED: "延期",
                SATISFACTION_RATED: "满意度评价", REVIEW_REQUESTED: "复查申请", REVIEW_DECIDED: "复查意见",
                RE_REVIEW_REQUESTED: "复核申请", RE_REVIEW_DECIDED: "复核意见（三级终结）",
                LEADER_ASSIGNED: "领导包案", SUPERVISION_REMINDER: "催办", SUPERVISION_ORDER: "督办",
                ACCOUNTABILITY: "责任追究", OFFER_UNANSWERED: "交办未答复"}
# Internal supervision records: never part of the petitioner's own progress view (查询码).
INTERNAL_TYPES = frozenset({ROUTED, LEADER_ASSIGNED, SUPERVISION_REMINDER, SUPERVISION_ORDER, ACCOUNTABILITY,
                            OFFER_UNANSWERED})
DECISION_TYPES = (REPLIED, REVIEW_DECIDED, RE_REVIEW_DECIDED)  # written decisions the petitioner receives
RATINGS = ("满意", "基本满意", "不满意")

HANDLING_DAYS = 60          # 办理答复: 60 days from acceptance …
EXTENSION_MAX_DAYS = 30     # … extendable once by at most 30 days, with approval
REVIEW_REQUEST_DAYS = 30    # 复查 requested within 30 days of the reply
REVIEW_DECISION_DAYS = 30   # … and decided within 30 days
RE_REVIEW_REQUEST_DAYS = 30
RE_REVIEW_DECISION_DAYS = 30

CST = timezone(timedelta(hours=8), "CST")  # calendar days are counted in Beijing time
CLOCK_LABELS = {"acceptance_notice": "受理告知（15日）", "handling": "办理答复（60日）",
                "review_request": "复查申请期（答复后30日）", "review_decision": "复查意见（30日）",
                "re_review_request": "复核申请期（复查意见后30日）", "re_review_decision": "复核意见（30日）"}
CLOCK_STATE_LABELS = {"running": "计时中", "extended": "已延期，计时中", "met": "按期完成", "breached": "已超期",
                      "expired": "申请期已过"}
SUPERVISED_CLOCKS = ("acceptance_notice", "handling", "review_decision", "re_review_decision")


def local_date(t: str | datetime) -> date:
    """The Beijing calendar day of an instant (ISO string or datetime; naive means UTC)."""
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(CST).date()


def due_date(start: str | datetime, days: int) -> date:
    """期间 in calendar days, the starting day not counted: the act is due by the end of the
    `days`-th day after the start (registered 1 March → 受理告知 by the end of 16 March)."""
    return local_date(start) + timedelta(days=days)


def _clock(name: str, start: str, days: int, done_at: str | None, responsible: str | None, today: date, *,
           supervised: bool = True, extended_days: int = 0) -> dict:
    due = due_date(start, days + extended_days)
    late = ((local_date(done_at) if done_at else today) - due).days
    if done_at:
        state = "met" if late <= 0 else "breached"
    elif late > 0:
        state = "breached" if supervised else "expired"
    else:
        state = "extended" if extended_days else "running"
    label = CLOCK_LABELS[name] + (f"，延期{extended_days}日" if extended_days else "")
    return {"name": name, "label": label, "start": start, "due": f"{due.isoformat()}T23:59:59+08:00",
            "due_date": due.isoformat(), "state": state, "state_label": CLOCK_STATE_LABELS[state],
            "done_at": done_at, "days_late": max(late, 0) if state == "breached" else 0,
            "days_left": (due - today).days if not done_at and late <= 0 else None,
            "responsible": responsible, "supervised": supervised, "extended_days": extended_days}


def clocks(state: dict, now: datetime) -> list[dict]:
    """Every statutory clock the case has started, in order. `responsible` is the body that owes the
    act (None for the petitioner's own application windows, which are not supervised)."""
    today = local_date(now)
    holder = state.get("holder")
    acc = state.get("acceptance")
    out = [_clock("acceptance_notice", state["registered_at"], ACCEPTANCE_NOTICE_DAYS, acc and acc["at"],
                  acc["by"] if acc else holder, today)]
    reply = state.get("reply")
    if acc and acc["decision"] == "accepted":
        ext = state.get("extension")
        out.append(_clock("handling", acc["at"], HANDLING_DAYS, reply and reply["at"], reply["by"] if reply else holder,
                          today, extended_days=ext["days"] if ext else 0))
    review = state.get("review")
    if reply:
        out.append(_clock("review_request", reply["at"], REVIEW_REQUEST_DAYS, review and review["requested_at"], None,
                          today, supervised=False))
    if review:
        out.append(_clock("review_decision", review["requested_at"], REVIEW_DECISION_DAYS, review.get("decided_at"),
                          review["body"], today))
        rr = state.get("re_review")
        if review.get("decided_at"):
            out.append(_clock("re_review_request", review["decided_at"], RE_REVIEW_REQUEST_DAYS,
                              rr and rr["requested_at"], None, today, supervised=False))
        if rr:
            out.append(_clock("re_review_decision", rr["requested_at"], RE_REVIEW_DECISION_DAYS, rr.get("decided_at"),
                              rr["body"], today))
    return out


def _acceptance_open(s: dict, ev: dict) -> bool:
    return s.get("status") == "in_handling" and ev["agency"] == s.get("holder") and not s.get("acceptance")


def _accepted(s: dict, ev: dict, p: dict) -> None:
    if _acceptance_open(s, ev):
        s.update(status="accepted", acceptance={"decision": "accepted", "at": ev["time"], "by": ev["agency"],
                                                "notice": p.get("notice")})


def _declined(s: dict, ev: dict, p: dict) -> None:
    if _acceptance_open(s, ev):
        s.update(status="declined", acceptance={"decision": "declined", "at": ev["time"], "by": ev["agency"],
                                                "reason": p.get("reason")})


def _replied(s: dict, ev: dict, p: dict) -> None:
    if s.get("status") == "accepted" and ev["agency"] == s.get("holder"):
        s.update(status="replied", reply={"at": ev["time"], "by": ev["agency"], "document_id": ev["id"],
                                          "title": p.get("title")})


def _extended(s: dict, ev: dict, p: dict) -> None:
    if s.get("status") == "accepted" and ev["agency"] == s.get("holder") and not s.get("extension"):
        s["extension"] = {"days": int(p["days"]), "approver": p.get("approver"), "reason": p.get("reason"),
                          "at": ev["time"], "by": ev["agency"]}


def _rated(s: dict, ev: dict, p: dict) -> None:
    s["ratings"] = [*s.get("ratings", []), {"rating": p["rating"], "source": p.get("source"), "stage": p.get("stage"),
                                            "at": ev["time"], "by": ev["agency"]}]
    s["satisfaction"] = p["rating"]


def _review_requested(s: dict, ev: dict, p: dict) -> None:
    if s.get("status") == "replied" and not s.get("review"):
        s.update(status="review_requested", review={"body": p["body"], "requested_at": ev["time"],
                                                    "via": ev["agency"], "decided_at": None})


def _review_decided(s: dict, ev: dict, p: dict) -> None:
    r = s.get("review") or {}
    if s.get("status") == "review_requested" and ev["agency"] == r.get("body"):
        s.update(status="reviewed", review={**r, "decided_at": ev["time"], "outcome": p.get("outcome"),
                                            "document_id": ev["id"]})


def _re_review_requested(s: dict, ev: dict, p: dict) -> None:
    if s.get("status") == "reviewed" and not s.get("re_review"):
        s.update(status="re_review_requested", re_review={"body": p["body"], "requested_at": ev["time"],
                                                          "via": ev["agency"], "decided_at": None})


def _re_review_decided(s: dict, ev: dict, p: dict) -> None:
    r = s.get("re_review") or {}
    if s.get("status") == "re_review_requested" and ev["agency"] == r.get("body"):
        s.update(status="terminated", re_review={**r, "decided_at": ev["time"], "outcome": p.get("outcome"),
                                                 "document_id": ev["id"]},
                 terminated={"at": ev["time"], "by": ev["agency"], "reason": "三级终结"})


def _leader_assigned(s: dict, ev: dict, p: dict) -> None:
    s["leader"] = {"name": p["leader"], "title": p.get("title"), "assigned_by": ev["actor"], "agency": ev["agency"],
                   "at": ev["time"]}


def _reminded(s: dict, ev: dict, p: dict) -> None:
    s["reminders"] = [*s.get("reminders", []), {"id": ev["id"], "clock": p["clock"], "due_date": p["due_date"],
                                                "days_before": p["days_before"], "addressed_to": p["addressed_to"],
                                                "at": ev["time"]}]


def _ordered(s: dict, ev: dict, p: dict) -> None:
    s["orders"] = [*s.get("orders", []), {"id": ev["id"], "clock": p["clock"], "level": p["level"],
                                          "addressed_to": p["addressed_to"], "supervisor": p["supervisor"],
                                          "due_date": p["due_date"], "days_late": p["days_late"], "at": ev["time"]}]
    if p["level"] == "挂牌督办":
        s["flags"] = sorted(set(s.get("flags", [])) | {"listed_supervision"})


def _accountable(s: dict, ev: dict, p: dict) -> None:
    s["accountability"] = [*s.get("accountability", []), {
        "id": ev["id"], "clock": p["clock"], "body": p["body"], "due_date": p["due_date"], "days_late": p["days_late"],
        "breach_no": p["breach_no"], "at": ev["time"]}]


_HANDLING_REDUCERS = {ACCEPTED: _accepted, DECLINED: _declined, REPLIED: _replied, EXTENDED: _extended,
                      SATISFACTION_RATED: _rated, REVIEW_REQUESTED: _review_requested,
                      REVIEW_DECIDED: _review_decided, RE_REVIEW_REQUESTED: _re_review_requested,
                      RE_REVIEW_DECIDED: _re_review_decided, LEADER_ASSIGNED: _leader_assigned,
                      SUPERVISION_REMINDER: _reminded, SUPERVISION_ORDER: _ordered, ACCOUNTABILITY: _accountable}


# --- 联合接访 (issue 7): 一厅式接待, 联合调处, 听证, 领导接访日 ------------------------------------------
# Published by the joint_reception service: the centre's node (ticket, session, outcome, commitments,
# hearings, 领导包案 via LEADER_ASSIGNED with payload {leader, by, title, day}) and each invited node
# (its answer). A session's events are addressed to every invited agency, so each of them shares the case.

RECEPTION_TICKETED = "case.reception_ticketed"                # 取号: the visit routed to a window of the hall
RECEPTION_SERVED = "case.reception_served"                    # 窗口接待完毕
JOINT_SESSION_OPENED = "case.joint_session_opened"            # 联合调处: session opened, agencies invited
JOINT_INVITATION_ANSWERED = "case.joint_invitation_answered"  # an invited agency accepts, or declines with a reason
JOINT_OUTCOME_RECORDED = "case.joint_outcome_recorded"        # the agreed outcome and the 一次性告知
COMMITMENT_MADE = "case.commitment_made"                      # who does what by when: {agency, action, due}
HEARING_SCHEDULED = "case.hearing_scheduled"                  # 听证 with its participants
HEARING_HELD = "case.hearing_held"                            # attendance and conclusion

EVENT_LABELS.update({RECEPTION_TICKETED: "联合接访取号", RECEPTION_SERVED: "窗口接待",
                     JOINT_SESSION_OPENED: "联合调处（邀请有关机构）", JOINT_INVITATION_ANSWERED: "联合调处答复",
                     JOINT_OUTCOME_RECORDED: "联合调处结果及一次性告知", COMMITMENT_MADE: "承办承诺",
                     HEARING_SCHEDULED: "听证安排", HEARING_HELD: "听证"})
INTERNAL_TYPES = INTERNAL_TYPES | {JOINT_INVITATION_ANSWERED}


def _replace_item(items: list[dict], key: str, value: str, new: dict) -> list[dict]:
    return [new if item.get(key) == value else item for item in items]


def _ticketed(s: dict, ev: dict, p: dict) -> None:
    s["reception"] = {"centre": ev["agency"], "ticket_id": p["ticket_id"], "number": p["number"], "topic": p["topic"],
                      "window": p["window"], "window_name": p.get("window_name"), "window_agency": p["window_agency"],
                      "issued_at": p.get("issued_at"), "served_at": None}


def _served(s: dict, ev: dict, p: dict) -> None:
    r = s.get("reception")
    if r and r["ticket_id"] == p["ticket_id"] and not r.get("served_at"):
        s["reception"] = {**r, "served_at": ev["time"], "served_by": p.get("served_by"),
                          "waited_minutes": p.get("waited_minutes")}


def _session_opened(s: dict, ev: dict, p: dict) -> None:
    sessions = list(s.get("joint_sessions", []))
    if not any(x["session_id"] == p["session_id"] for x in sessions):
        sessions.append({"session_id": p["session_id"], "centre": ev["agency"], "agenda": p.get("agenda"),
                         "scheduled_at": p.get("scheduled_at"), "place": p.get("place"), "opened_at": ev["time"],
                         "status": "inviting", "invited": list(p["invited"]),
                         "answers": [{"agency": a, "answer": "pending", "reason": None} for a in p["invited"]],
                         "outcome": None})
    s["joint_sessions"] = sessions


def _invitation_answered(s: dict, ev: dict, p: dict) -> None:
    sess = next((x for x in s.get("joint_sessions", []) if x["session_id"] == p["session_id"]), None)
    mine = next((a for a in (sess or {}).get("answers", []) if a["agency"] == ev["agency"]), None)
    if mine is None or mine["answer"] != "pending":  # only an invited agency, and only its first answer
        return
    answers = _replace_item(sess["answers"], "agency", ev["agency"],
                            {"agency": ev["agency"], "answer": "accepted" if p["accepted"] else "declined",
                             "reason": p.get("reason") or None, "at": ev["time"]})
    status = sess["status"]
    if status == "inviting" and all(a["answer"] != "pending" for a in answers):
        status = "ready"
    s["joint_sessions"] = _replace_item(s["joint_sessions"], "session_id", p["session_id"],
                                        {**sess, "answers": answers, "status": status})


def _outcome_recorded(s: dict, ev: dict, p: dict) -> None:
    sess = next((x for x in s.get("joint_sessions", []) if x["session_id"] == p["session_id"]), None)
    if sess is None or sess["centre"] != ev["agency"] or sess["status"] == "concluded":
        return
    s["joint_sessions"] = _replace_item(s["joint_sessions"], "session_id", p["session_id"], {
        **sess, "status": "concluded", "outcome": {"summary": p["summary"], "participants": p.get("participants", []),
                                                   "at": ev["time"]}})
    if p.get("notice"):
        s["notice"] = {**p["notice"], "session_id": p["session_id"], "by": ev["agency"], "at": ev["time"]}


def _commitment_made(s: dict, ev: dict, p: dict) -> None:
    items = list(s.get("commitments", []))
    if not any(c["id"] == p["commitment_id"] for c in items):
        items.append({"id": p["commitment_id"], "session_id": p.get("session_id"), "agency": p["agency"],
                      "action": p["action"], "due": p["due"], "recorded_by": ev["agency"], "at": ev["time"]})
    s["commitments"] = items


def _hearing_scheduled(s: dict, ev: dict, p: dict) -> None:
    items = list(s.get("hearings", []))
    if not any(h["hearing_id"] == p["hearing_id"] for h in items):
        items.append({"hearing_id": p["hearing_id"], "centre": ev["agency"], "subject": p.get("subject"),
                      "scheduled_at": p["scheduled_at"], "place": p.get("place"), "participants": p["participants"],
                      "status": "scheduled", "attendance": None, "conclusion": None})
    s["hearings"] = items


def _hearing_held(s: dict, ev: dict, p: dict) -> None:
    h = next((x for x in s.get("hearings", []) if x["hearing_id"] == p["hearing_id"]), None)
    if h is not None and h["centre"] == ev["agency"] and h["status"] == "scheduled":
        s["hearings"] = _replace_item(s["hearings"], "hearing_id", p["hearing_id"], {
            **h, "status": "held", "attendance": p["attendance"], "conclusion": p["conclusion"], "held_at": ev["time"]})


# Folded by apply() through its dispatch table (appended, so the branches above it stay untouched).
_HANDLING_REDUCERS.update({RECEPTION_TICKETED: _ticketed, RECEPTION_SERVED: _served,
                           JOINT_SESSION_OPENED: _session_opened, JOINT_INVITATION_ANSWERED: _invitation_answered,
                           JOINT_OUTCOME_RECORDED: _outcome_recorded, COMMITMENT_MADE: _commitment_made,
                           HEARING_SCHEDULED: _hearing_scheduled, HEARING_HELD: _hearing_held})


def joint_reception_view(state: dict, now: datetime) -> dict:
    """The 联合接访 part of a case view: reception at the hall, joint sessions with each agency's answer,
    the commitments with their own deadline clocks (running / breached), the one-time notice, hearings."""
    today = local_date(now)
    commitments = []
    for c in state.get("commitments", []):
        due = date.fromisoformat(c["due"])
        late = (today - due).days
        commitments.append({**c, "due_date": c["due"], "state": "breached" if late > 0 else "running",
                            "state_label": CLOCK_STATE_LABELS["breached" if late > 0 else "running"],
                            "days_left": None if late > 0 else -late, "days_late": max(late, 0)})
    return {"reception": state.get("reception"), "joint_sessions": state.get("joint_sessions", []),
            "commitments": commitments, "notice": state.get("notice"), "hearings": state.get("hearings", [])}


# --- 诉访分离: legal channels (issue 6, services/legal_referral) ------------------------------------------
# Routing hands a 涉法涉诉 case to the legal-referral service of the deciding node (LEGAL_HANDOVER). That
# node classifies it (LEGAL_CLASSIFIED: channel, body, rule and reasons, or a clerk's override with its
# reason) and refers it (REFERRED); the receiving body answers over gRPC and on the ledger: ACCEPTED with
# its own receipt number (回执) — it becomes the holder — or DECLINED with a reason (the referring node
# re-classifies). The referring node then gives the petitioner the written notice (LEGAL_NOTICE, 书面告知),
# which also answers the 15-day acceptance clock. The body later reports FILED / DECIDED / WITHDRAWN and,
# at a procuratorate, the 检调对接 "5+1" steps. Relief (司法救助 / 社会救助) requests carry an amount and a
# basis; the receiving body receipts them and approves an amount or refuses with a reason. As with
# SIGNED_FOR, an answer counts only from the body the current attempt went to: a stale answer is a no-op.

LEGAL_HANDOVER = "case.legal_handover"          # routing → legal referral (诉访分离)
LEGAL_CLASSIFIED = "case.legal_classified"      # 法律渠道分类 (rule and reasons, or 人工改判 with a reason)
REFERRED = "case.referred"                      # 移送 to the body of the legal channel
REFERRAL_ACCEPTED = "case.referral_accepted"    # 接收, with the body's receipt number (回执)
REFERRAL_DECLINED = "case.referral_declined"    # 退回 with a reason
REFERRAL_FILED = "case.referral_filed"          # 立案 / 受理 in the legal channel
REFERRAL_DECIDED = "case.referral_decided"      # 裁决 / 决定 / 判决
REFERRAL_WITHDRAWN = "case.referral_withdrawn"  # 申请人撤回
LEGAL_NOTICE = "case.legal_notice"              # 书面告知 to the petitioner: channel, body, materials, time limits
PROCURATORIAL_STEP = "case.procuratorial_step"  # 检调对接 5+1: 书面告知 风险评估 预调解 监督和解 跟踪回访 (+公开听证)
RELIEF_REQUESTED = "case.relief_requested"      # 救助申请: kind, body, amount requested, basis
RELIEF_RECEIVED = "case.relief_received"        # the body's receipt number
RELIEF_DECIDED = "case.relief_decided"          # approved with the amount granted, or refused with a reason

REFERRAL_PROGRESS = {REFERRAL_FILED: "filed", REFERRAL_DECIDED: "decided", REFERRAL_WITHDRAWN: "withdrawn"}
_PROGRESS_FROM = {"filed": ("accepted",), "decided": ("accepted", "filed"), "withdrawn": ("accepted", "filed")}

STATUS_LABELS.update({"legal_review": "涉法涉诉待分流", "referred": "已移送法律渠道待接收",
                      "referral_declined": "移送被退回待重新分流", "legal_accepted": "法律渠道已接收",
                      "legal_filed": "法律渠道已立案受理", "legal_decided": "法律渠道已作出决定",
                      "legal_withdrawn": "申请人已撤回"})
EVENT_LABELS.update({LEGAL_HANDOVER: "转法律渠道分流", LEGAL_CLASSIFIED: "法律渠道分类", REFERRED: "移送法律渠道",
                     REFERRAL_ACCEPTED: "法律渠道接收（回执）", REFERRAL_DECLINED: "法律渠道退回",
                     REFERRAL_FILED: "立案受理", REFERRAL_DECIDED: "作出决定", REFERRAL_WITHDRAWN: "申请人撤回",
                     LEGAL_NOTICE: "书面告知（导入法律程序）", PROCURATORIAL_STEP: "检调对接",
                     RELIEF_REQUESTED: "救助申请", RELIEF_RECEIVED: "救助申请接收", RELIEF_DECIDED: "救助决定"})
INTERNAL_TYPES = INTERNAL_TYPES | {LEGAL_HANDOVER, LEGAL_CLASSIFIED}


def _legal_of(s: dict) -> dict:
    return dict(s.get("legal") or {"status": None, "attempt": 0, "classification": None, "classifications": [],
                                   "declines": [], "steps": [], "history": [], "notice": None})


def _legal_handover(s: dict, ev: dict, p: dict) -> None:
    lg = _legal_of(s)
    if lg["status"] in (None, "declined"):
        lg.update(status="classifying", handover_by=ev["agency"], handover_at=ev["time"])
        s.update(status="legal_review", legal=lg)


def _legal_classified(s: dict, ev: dict, p: dict) -> None:
    lg = _legal_of(s)
    entry = {k: p.get(k) for k in ("attempt", "channel", "channel_label", "body_type", "body", "body_name", "rule",
                                   "reasons", "override", "override_reason")}
    entry.update(by=ev["agency"], actor=ev["actor"], at=ev["time"])
    lg.update(classification=entry, classifications=[*lg["classifications"], entry])
    s["legal"] = lg


def _referred(s: dict, ev: dict, p: dict) -> None:
    lg = _legal_of(s)
    if lg["status"] in ("accepted", "filed", "decided", "withdrawn"):
        return  # already in a legal channel
    lg.update(status="referred", attempt=p["attempt"], referred_to=p["to"], referred_by=ev["agency"],
              channel=p["channel"], channel_label=p.get("channel_label"), referred_at=ev["time"])
    s.update(status="referred", legal=lg)


def _answer_open(s: dict, ev: dict, p: dict) -> dict | None:
    """The legal state when `ev` answers the current referral (from its body, for its attempt), else None."""
    lg = s.get("legal") or {}
    if lg.get("status") == "referred" and lg.get("referred_to") == ev["agency"] and lg.get("attempt") == p.get("attempt"):
        return dict(lg)
    return None


def _referral_accepted(s: dict, ev: dict, p: dict) -> None:
    if (lg := _answer_open(s, ev, p)) is not None:
        lg.update(status="accepted", body=ev["agency"], receipt_no=p["receipt_no"], accepted_at=ev["time"],
                  referred_to=None)
        s.update(status="legal_accepted", holder=ev["agency"], lead=ev["agency"], co_handlers=[], offered_to=None,
                 legal=lg)


def _referral_declined(s: dict, ev: dict, p: dict) -> None:
    if (lg := _answer_open(s, ev, p)) is not None:
        lg.update(status="declined", referred_to=None, declines=[*lg.get("declines", []), {
            "by": ev["agency"], "attempt": p["attempt"], "channel": lg.get("channel"),
            "channel_label": lg.get("channel_label"), "reason": p["reason"], "at": ev["time"]}])
        s.update(status="referral_declined", legal=lg)


def _referral_progress(s: dict, ev: dict, p: dict) -> None:
    lg = dict(s.get("legal") or {})
    new = REFERRAL_PROGRESS[ev["type"]]
    if lg.get("body") == ev["agency"] == s.get("holder") and lg.get("status") in _PROGRESS_FROM[new]:
        lg.update(status=new, history=[*lg.get("history", []), {"status": new, "note": p.get("note"),
                                                                "reference": p.get("reference"), "at": ev["time"]}])
        s.update(status=f"legal_{new}", legal=lg)


def _legal_notice(s: dict, ev: dict, p: dict) -> None:
    lg = _legal_of(s)
    lg["notice"] = {**p["notice"], "by": ev["agency"], "at": ev["time"]}
    s["legal"] = lg
    if not s.get("acceptance"):  # the written notice is the petition body's answer within the 15 days
        s["acceptance"] = {"decision": "legal_channel", "at": ev["time"], "by": ev["agency"],
                           "notice": p["notice"].get("title")}


def _procuratorial_step(s: dict, ev: dict, p: dict) -> None:
    lg = _legal_of(s)
    if lg.get("body") == ev["agency"] and not any(x["step"] == p["step"] for x in lg["steps"]):
        lg["steps"] = [*lg["steps"], {"step": p["step"], "date": p["date"], "outcome": p["outcome"],
                                      "hearing": p.get("hearing", False), "at": ev["time"]}]
        s["legal"] = lg


def _relief_item(s: dict, request_id: str) -> dict | None:
    return next((r for r in s.get("relief", []) if r["request_id"] == request_id), None)


def _relief_requested(s: dict, ev: dict, p: dict) -> None:
    if _relief_item(s, p["request_id"]) is None:
        s["relief"] = [*s.get("relief", []), {
            "request_id": p["request_id"], "kind": p["kind"], "kind_label": p.get("kind_label"), "to": p["to"],
            "amount_requested": p["amount_requested"], "basis": p["basis"], "requested_by": ev["agency"],
            "requested_at": ev["time"], "status": "requested", "receipt_no": None, "amount_granted": None,
            "reason": None}]


def _relief_received(s: dict, ev: dict, p: dict) -> None:
    r = _relief_item(s, p["request_id"])
    if r is not None and r["to"] == ev["agency"] and r["status"] == "requested":
        s["relief"] = _replace_item(s["relief"], "request_id", r["request_id"],
                                    {**r, "status": "received", "receipt_no": p["receipt_no"]})


def _relief_decided(s: dict, ev: dict, p: dict) -> None:
    r = _relief_item(s, p["request_id"])
    if r is not None and r["to"] == ev["agency"] and r["status"] in ("requested", "received"):
        s["relief"] = _replace_item(s["relief"], "request_id", r["request_id"], {
            **r, "status": "approved" if p["approved"] else "refused", "amount_granted": p.get("amount_granted"),
            "reason": p.get("reason"), "decided_at": ev["time"]})


_HANDLING_REDUCERS.update({LEGAL_HANDOVER: _legal_handover, LEGAL_CLASSIFIED: _legal_classified, REFERRED: _referred,
                           REFERRAL_ACCEPTED: _referral_accepted, REFERRAL_DECLINED: _referral_declined,
                           REFERRAL_FILED: _referral_progress, REFERRAL_DECIDED: _referral_progress,
                           REFERRAL_WITHDRAWN: _referral_progress, LEGAL_NOTICE: _legal_notice,
                           PROCURATORIAL_STEP: _procuratorial_step, RELIEF_REQUESTED: _relief_requested,
                           RELIEF_RECEIVED: _relief_received, RELIEF_DECIDED: _relief_decided})


def legal_view(state: dict) -> dict:
    """The 诉访分离 part of a case view: classification(s) with reasons, the referral and its receipt,
    declines, the written notice, status history, 检调对接 steps, and relief requests."""
    return {"legal": state.get("legal"), "relief": state.get("relief", [])}
