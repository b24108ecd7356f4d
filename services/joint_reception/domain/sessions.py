"""联合调处 and 听证: the rules on who may commit to what, and who takes part in a hearing. Pure domain."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

# 听证 participants by role. The petitioner is listed by role only: identity stays with intake and never
# travels on the bus (DESIGN §2, confidential by design).
HEARING_ROLES = {"chair": "主持人", "panel": "听证员", "petitioner": "信访人", "agency": "机构代表",
                 "observer": "第三方（人大代表、政协委员、律师等）"}
ANSWER_LABELS = {"pending": "未答复", "accepted": "已接受", "declined": "已拒绝"}
LONG_WAIT_MINUTES = 30  # the queue screen flags a visitor waiting longer than this


@dataclass(frozen=True)
class Commitment:
    """承诺: who does what by when, agreed in a joint session."""
    agency: str
    action: str
    due: date


def commitment_problem(c: Commitment, answers: dict[str, str], host: str, today: date) -> str | None:
    """Only the centre and agencies that accepted the invitation commit; a deadline lies ahead."""
    if c.agency != host and answers.get(c.agency) != "accepted":
        state = ANSWER_LABELS.get(answers.get(c.agency, ""), "未受邀请")
        return f"{c.agency} 未参加本次联合调处（{state}），不能作出承诺 (only participants commit)"
    if c.due < today:
        return f"办结期限 {c.due.isoformat()} 早于今天 {today.isoformat()} (the due date is in the past)"
    return None


def hearing_problem(participants: list[dict], known_agencies: set[str]) -> str | None:
    roles = [p.get("role") for p in participants]
    if "chair" not in roles:
        return "听证须有主持人（role = chair） (a hearing needs a chair)"
    for i, p in enumerate(participants):
        if p.get("role") not in HEARING_ROLES:
            return f"participants[{i}].role: 未知角色 unknown role {p.get('role')!r}; one of {', '.join(HEARING_ROLES)}"
        if p["role"] == "agency" and p.get("agency") not in known_agencies:
            return f"participants[{i}].agency: 机构代表须注明联盟内机构 (an agency representative names a known agency)"
        if p["role"] not in ("petitioner", "agency") and not p.get("name"):
            return f"participants[{i}].name: {HEARING_ROLES[p['role']]}须写明姓名 (name required)"
    return None


def minutes_between(start: datetime, end: datetime) -> int:
    return max(int((end - start) / timedelta(minutes=1)), 0)
