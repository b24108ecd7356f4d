"""Handling and supervision rules over a case's ledger state. Pure: no database, no bus, no framework.

The statutory clocks themselves are `shared.ledger.clocks` (every node's case view shows them); this
module decides what a command may do given those clocks (受理, 答复, 延期, 复查, 复核 …), which body
is the next-higher one (上一级机关), which single node supervises a case, and which 督查督办 notices
are due (催办 reminders, 督办 / 挂牌督办 orders, 责任追究 records) — with deterministic event ids, so a
restarted or rebuilt checker can never issue the same notice twice."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Iterable

from shared import divisions, ledger
from shared.config import Directory, DirectoryEntry
from shared.errors import Conflict, Forbidden, Invalid

TERMINATED_MESSAGE = "该信访事项已经复核，三级终结：信访人以同一事实和理由提出的投诉请求不再受理"
_ID_NUMBER = re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
NOTICE_NAMESPACE = uuid.UUID("0f6a3c52-7d1e-5b8a-9c41-6c1a2f8e9b30")  # 督查督办 event ids (uuid5)


def clock(state: dict, name: str, now: datetime) -> dict | None:
    return next((c for c in ledger.clocks(state, now) if c["name"] == name), None)


def _status_label(state: dict) -> str:
    return ledger.STATUS_LABELS.get(state.get("status"), state.get("status", ""))


def not_terminated(state: dict) -> None:
    if state.get("status") == "terminated":
        raise Conflict(TERMINATED_MESSAGE)


def _must_hold(state: dict, agency: str, names: Callable[[str], str]) -> None:
    if state.get("holder") != agency:
        raise Forbidden(f"本机构不是该案件的承办机构（承办机构：{names(state.get('holder'))}），不能办理此事项")


def check_acceptance(state: dict, agency: str, names: Callable[[str], str]) -> None:
    """受理 / 不予受理: by the holder, once, after it signed for the case."""
    not_terminated(state)
    _must_hold(state, agency, names)
    if acc := state.get("acceptance"):
        done = "受理" if acc["decision"] == "accepted" else "作出不予受理决定"
        raise Conflict(f"该案件已于{ledger.local_date(acc['at'])}{done}，不能重复办理")
    if state.get("status") != "in_handling":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，须由承办机构签收后方可受理")


def check_reply(state: dict, agency: str, names: Callable[[str], str]) -> None:
    """答复: the holder replies in writing to an accepted case."""
    not_terminated(state)
    _must_hold(state, agency, names)
    if state.get("status") != "accepted":
        if state.get("reply"):
            raise Conflict(f"该案件已于{ledger.local_date(state['reply']['at'])}作出书面答复")
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，须先受理再答复")


def check_document_text(text: str) -> None:
    """Decisions travel on the bus to every node that shares the case: no identity in clear."""
    if _ID_NUMBER.search(text) or _MOBILE.search(text):
        raise Invalid("text: 意见书正文不得包含身份证号码或手机号码（身份信息不得在各机构间明文传递），"
                      "请以“信访人”指代", "text")


def check_extension(state: dict, agency: str, days: int, now: datetime, names: Callable[[str], str]) -> None:
    """延期: once, by at most 30 days, with an approver, while the handling period still runs."""
    not_terminated(state)
    _must_hold(state, agency, names)
    if state.get("status") != "accepted":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，只有已受理、尚未答复的案件可以延期")
    if ext := state.get("extension"):
        raise Conflict(f"办理期限已于{ledger.local_date(ext['at'])}延长{ext['days']}日（批准人：{ext['approver']}），"
                       "依照《信访工作条例》只能延期一次，不得再次延期")
    if not 1 <= days <= ledger.EXTENSION_MAX_DAYS:
        raise Invalid(f"days: 延期天数应为1至{ledger.EXTENSION_MAX_DAYS}日", "days")
    handling = clock(state, "handling", now)
    if handling["state"] == "breached":
        raise Conflict(f"办理期限已于{handling['due_date']}届满，不能再申请延期，请尽快作出书面答复")


def decision_stage(state: dict) -> str | None:
    """Which written decision a satisfaction rating is about: the latest one the petitioner received."""
    if (state.get("re_review") or {}).get("decided_at"):
        return "re_review"
    if (state.get("review") or {}).get("decided_at"):
        return "review"
    return "reply" if state.get("reply") else None


def check_rating(state: dict, agency: str, names: Callable[[str], str]) -> str:
    """满意度: rates the latest written decision; by a body that gave one, or a petition bureau (回访)."""
    stage = decision_stage(state)
    if stage is None:
        raise Conflict("尚未作出书面答复，不能进行满意度评价")
    return stage


def higher_body(directory: Directory, agency: str, exclude: Iterable[str] = ()) -> DirectoryEntry | None:
    """上一级机关: the same kind of body at the parent division if the federation has it, else the
    petition bureau of that level (for that level's people's government), walking further up when
    neither is there; without any, the petition bureau of the body's own level (本级人民政府) when the
    body is a department. Bodies in `exclude` (earlier deciders, the body reported on) are skipped."""
    entry = directory.get(agency)
    if entry is None:
        return None
    skip = set(exclude) | {agency}
    for code in divisions.chain(entry.division)[1:]:
        for type_ in dict.fromkeys((entry.type, "petition_bureau")):
            if (n := directory.find(type_, code)) is not None and n.agency not in skip:
                return n
    if entry.type != "petition_bureau":
        n = directory.find("petition_bureau", entry.division)
        if n is not None and n.agency not in skip:
            return n
    return None


def _window_open(state: dict, window: str, decided_what: str, now: datetime) -> None:
    c = clock(state, window, now)
    if c["state"] == "expired":
        what = "复查" if window == "review_request" else "复核"
        over = (ledger.local_date(now) - date.fromisoformat(c["due_date"])).days
        raise Invalid(f"已超过{what}申请期限：信访人应自收到{decided_what}之日起30日内提出{what}申请"
                      f"（{decided_what}日期 {ledger.local_date(c['start'])}，申请截止 {c['due_date']}，已逾期{over}日），"
                      f"本申请不予受理")


def check_review_request(state: dict, agency: str, now: datetime, directory: Directory,
                         names: Callable[[str], str]) -> DirectoryEntry:
    """复查申请: within 30 days of the reply, to the next-higher body; recorded at the holder's node or there."""
    not_terminated(state)
    if state.get("review"):
        raise Conflict(f"该案件已于{ledger.local_date(state['review']['requested_at'])}申请复查，"
                       f"复查机关：{names(state['review']['body'])}")
    if state.get("status") != "replied":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，须在承办机构书面答复后方可申请复查")
    _window_open(state, "review_request", "书面答复", now)
    body = higher_body(directory, state["reply"]["by"], exclude={state.get("reported_agency") or ""})
    if body is None:
        raise Conflict("本联盟中没有该承办机构的上一级机关，无法受理复查申请")
    if agency not in (state.get("holder"), body.agency):
        raise Forbidden(f"复查申请应由原承办机构（{names(state.get('holder'))}）或复查机关（{body.name}）登记")
    return body


def check_review_decision(state: dict, agency: str, names: Callable[[str], str]) -> None:
    """复查意见: by the reviewing body, at its node."""
    not_terminated(state)
    if state.get("status") != "review_requested":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，没有待作出的复查意见")
    if state["review"]["body"] != agency:
        raise Forbidden(f"复查意见应由复查机关{names(state['review']['body'])}作出")


def check_re_review_request(state: dict, agency: str, now: datetime, directory: Directory,
                            names: Callable[[str], str]) -> DirectoryEntry:
    """复核申请: within 30 days of the review decision, to the body above the reviewing body."""
    not_terminated(state)
    if state.get("re_review"):
        raise Conflict(f"该案件已申请复核，复核机关：{names(state['re_review']['body'])}")
    if state.get("status") != "reviewed":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，须在复查意见作出后方可申请复核")
    _window_open(state, "re_review_request", "复查意见", now)
    reviewer = state["review"]["body"]
    body = higher_body(directory, reviewer, exclude={state["reply"]["by"], state.get("reported_agency") or ""})
    if body is None:
        raise Conflict("本联盟中没有复查机关的上一级机关，无法受理复核申请")
    if agency not in (reviewer, body.agency, state.get("holder")):
        raise Forbidden(f"复核申请应由复查机关（{names(reviewer)}）或复核机关（{body.name}）登记")
    return body


def check_re_review_decision(state: dict, agency: str, names: Callable[[str], str]) -> None:
    """复核意见: by the re-reviewing body; the case is then terminated (三级终结)."""
    not_terminated(state)
    if state.get("status") != "re_review_requested":
        raise Conflict(f"案件当前状态为“{_status_label(state)}”，没有待作出的复核意见")
    if state["re_review"]["body"] != agency:
        raise Forbidden(f"复核意见应由复核机关{names(state['re_review']['body'])}作出")


# --- 督查督办 ---------------------------------------------------------------------------------------

def supervising_bureau(directory: Directory, state: dict) -> str:
    """The ONE node that emits a case's 督查督办 events: the petition bureau nearest the case's division
    that shares the case (bureaus of the division and above are in the audience from registration),
    else the node that received it. Every node computes the same answer from the same state."""
    audience = set(state.get("audience", []))
    for code in divisions.chain(state["division"]):
        n = directory.find("petition_bureau", code)
        if n is not None and n.agency in audience:
            return n.agency
    return state["origin"]


def escalation_bureau(directory: Directory, supervisor: str) -> str:
    """挂牌督办 is flagged at the next level: the petition bureau above the supervising one (or itself)."""
    entry = directory.get(supervisor)
    if entry is not None:
        for code in divisions.chain(entry.division)[1:]:
            if (n := directory.find("petition_bureau", code)) is not None:
                return n.agency
    return supervisor


def notice_id(case_id: str, *parts: object) -> str:
    """Deterministic event id (uuid5): the same notice always has the same id, so JetStream (Nats-Msg-Id)
    and every consumer's event-id key drop a second copy, even from a checker rebuilt from scratch."""
    return uuid.uuid5(NOTICE_NAMESPACE, "|".join([case_id, *map(str, parts)])).hex


@dataclass(frozen=True)
class Notice:
    type: str
    id: str
    payload: dict
    audience: tuple[str, ...] = ()


def pending_notices(state: dict, now: datetime, *, remind_days: Iterable[int], supervisor: str, escalation: str,
                    names: Callable[[str], str]) -> list[Notice]:
    """The 督查督办 events now due for one case, given the notices already on its ledger:
    * 催办: a supervised clock still running is within N days of its due date (N from `remind_days`; the
      most urgent applicable N, once per clock, due date and N);
    * 责任追究: a supervised clock breached (late, done or not) — one record per clock, numbered;
    * 督办: a breached clock whose act is still not done, addressed to the body that owes it; from the
      case's second breach on, 挂牌督办 at the next level (`escalation`)."""
    case_id = state["case_id"]
    breaches = {a["clock"]: a["breach_no"] for a in state.get("accountability", [])}
    ordered = {o["clock"] for o in state.get("orders", [])}
    reminded: dict[tuple[str, str], int] = {}
    for r in state.get("reminders", []):
        key = (r["clock"], r["due_date"])
        reminded[key] = min(reminded.get(key, 10 ** 6), r["days_before"])
    remind = sorted(set(remind_days))
    out: list[Notice] = []
    for c in ledger.clocks(state, now):
        body = c["responsible"]
        if not c["supervised"] or not body:
            continue
        label = ledger.CLOCK_LABELS[c["name"]]
        if c["state"] == "breached":
            if c["name"] not in breaches:
                breaches[c["name"]] = len(breaches) + 1
                out.append(Notice(ledger.ACCOUNTABILITY, notice_id(case_id, c["name"], "accountability"), {
                    "clock": c["name"], "clock_label": label, "body": body, "due_date": c["due_date"],
                    "days_late": c["days_late"], "breach_no": breaches[c["name"]],
                    "note": f"{names(body)}未在{label}期限（{c['due_date']}）内办结，超期{c['days_late']}日，记录在案，"
                            f"依规追究责任"}, (body,)))
            if c["done_at"] is None and c["name"] not in ordered:
                listed = breaches[c["name"]] >= 2
                level, by = ("挂牌督办", escalation) if listed else ("督办", supervisor)
                ordered.add(c["name"])
                out.append(Notice(ledger.SUPERVISION_ORDER, notice_id(case_id, c["name"], "order"), {
                    "clock": c["name"], "clock_label": label, "level": level, "addressed_to": body,
                    "supervisor": by, "due_date": c["due_date"], "days_late": c["days_late"],
                    "breach_no": breaches[c["name"]],
                    "note": (f"【{level}】{names(body)}：该信访事项{label}期限已于{c['due_date']}届满，"
                             f"已超期{c['days_late']}日。" + ("本案系第二次超期，由" if listed else "请") +
                             (f"{names(by)}挂牌督办，请" if listed else "") +
                             f"立即办理，并将办理结果报{names(by)}。")}, (body, by)))
        elif c["state"] in ("running", "extended") and remind:
            applicable = [n for n in remind if c["days_left"] <= n]
            if applicable and reminded.get((c["name"], c["due_date"]), 10 ** 6) > applicable[0]:
                n = applicable[0]
                out.append(Notice(ledger.SUPERVISION_REMINDER, notice_id(case_id, c["name"], c["due_date"], "remind", n), {
                    "clock": c["name"], "clock_label": label, "addressed_to": body, "supervisor": supervisor,
                    "due_date": c["due_date"], "days_before": n, "days_left": c["days_left"],
                    "note": f"【催办】{names(body)}：该信访事项{label}将于{c['due_date']}到期（还剩{c['days_left']}日），"
                            f"请抓紧办理。"}, (body,)))
    return out


def next_check(state: dict, now: datetime, remind_days: Iterable[int]) -> date | None:
    """The first Beijing day on which something may become due for this case (a reminder threshold or a
    breach), given that everything due today has been issued; None when no supervised clock runs."""
    today = ledger.local_date(now)
    days: list[date] = []
    for c in ledger.clocks(state, now):
        if c["supervised"] and c["responsible"] and c["state"] in ("running", "extended"):
            due = date.fromisoformat(c["due_date"])
            days += [d for d in [due - timedelta(days=n) for n in remind_days] + [due + timedelta(days=1)] if d > today]
    return min(days) if days else None
