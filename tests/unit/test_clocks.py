"""Issue 5: the statutory clocks (shared.ledger.clocks), the handling rules and the 督查督办 decisions
(services/supervision/domain) and the 考核 formulas — pure functions, no processes."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from services.supervision.domain import assessment, rules
from shared import clock, ledger
from shared.config import Directory, DirectoryEntry
from shared.errors import Conflict, Forbidden, Invalid

CST = ledger.CST
T0 = datetime(2030, 3, 1, 10, 0, tzinfo=CST)  # registered 1 March 2030, 10:00 Beijing time
BUREAU, CITY, HRSS, CITY_HRSS = "510104-xfj", "510100-xfj", "510104-rsj", "510100-rsj"
DIRECTORY = Directory(nodes=[
    DirectoryEntry(agency=BUREAU, name="锦江区信访局", type="petition_bureau", division="510104", level="county"),
    DirectoryEntry(agency=HRSS, name="锦江区人力资源和社会保障局", type="hrss", division="510104", level="county"),
    DirectoryEntry(agency=CITY, name="成都市信访局", type="petition_bureau", division="510100", level="city"),
    DirectoryEntry(agency=CITY_HRSS, name="成都市人力资源和社会保障局", type="hrss", division="510100", level="city"),
    DirectoryEntry(agency="510104-fy", name="锦江区人民法院", type="court", division="510104", level="county"),
])
_ids = itertools.count()


def name(agency):
    entry = DIRECTORY.get(agency)
    return entry.name if entry else agency


def day(n: float, hour: int = 10) -> datetime:
    return T0.replace(hour=hour) + timedelta(days=n)


def ev(type_, at, agency=HRSS, payload=None, audience=(BUREAU, CITY, HRSS), id_=None):
    return {"id": id_ or f"e{next(_ids)}", "case_id": "LF1", "type": type_, "agency": agency, "actor": "t",
            "time": at.astimezone(timezone.utc).isoformat(), "payload": payload or {}, "audience": list(audience)}


def fold(*events, state=None):
    for e in events:
        state = ledger.apply(state, e)
    return state


REGISTERED = ev(ledger.REGISTERED, T0, BUREAU, {"category": "劳动社保", "division": "510104", "channel": "visit",
                                                 "title": "拖欠工资", "persons": 1})
SIGNED = [ev(ledger.OFFERED, T0 + timedelta(minutes=1), BUREAU, {"to": HRSS}),
          ev(ledger.SIGNED_FOR, T0 + timedelta(minutes=2), HRSS)]


def signed():
    return fold(REGISTERED, *SIGNED)


def by_name(state, now):
    return {c["name"]: c for c in ledger.clocks(state, now)}


# --- the clocks ------------------------------------------------------------------------------------

def test_acceptance_notice_counts_calendar_days_in_beijing_time():
    st = signed()
    c = by_name(st, day(15, hour=23))["acceptance_notice"]
    assert c["due_date"] == "2030-03-16" and c["state"] == "running" and c["days_left"] == 0
    assert by_name(st, day(16, hour=0))["acceptance_notice"]["state"] == "breached"
    on_time = fold(ev(ledger.ACCEPTED, day(14)), state=st)
    late = fold(ev(ledger.ACCEPTED, day(16)), state=st)
    assert by_name(on_time, day(40))["acceptance_notice"]["state"] == "met"
    c = by_name(late, day(40))["acceptance_notice"]
    assert c["state"] == "breached" and c["days_late"] == 1 and c["done_at"]
    # the legacy view: a case only signed for is not yet told (受理告知 is the act that meets the clock)
    assert by_name(st, day(1))["acceptance_notice"]["state"] == "running"


def test_registration_late_in_the_evening_counts_from_the_beijing_day():
    late_evening = ev(ledger.REGISTERED, datetime(2030, 3, 1, 23, 30, tzinfo=CST), BUREAU,
                      {"category": "其他", "division": "510104", "channel": "visit", "title": "x", "persons": 1})
    assert ledger.clocks(fold(late_evening), day(1))[0]["due_date"] == "2030-03-16"


def test_handling_clock_extension_and_reply():
    st = fold(ev(ledger.ACCEPTED, day(2)), state=signed())
    c = by_name(st, day(10))["handling"]
    assert c["due_date"] == "2030-05-02" and c["state"] == "running"  # 2 March + 60 days
    ext = fold(ev(ledger.EXTENDED, day(50), payload={"days": 30, "approver": "王局长", "reason": "需调查"}), state=st)
    c = by_name(ext, day(70))["handling"]
    assert c["state"] == "extended" and c["due_date"] == "2030-06-01" and c["extended_days"] == 30
    assert "延期30日" in c["label"]
    done = fold(ev(ledger.REPLIED, day(85), payload={"text": "经调查……"}), state=ext)
    assert by_name(done, day(120))["handling"]["state"] == "met"
    assert done["status"] == "replied"
    assert by_name(st, day(63))["handling"]["state"] == "breached"


def test_extension_rules():
    st = fold(ev(ledger.ACCEPTED, day(2)), state=signed())
    rules.check_extension(st, HRSS, 30, day(50), name)
    with pytest.raises(Invalid, match="1至30日"):
        rules.check_extension(st, HRSS, 31, day(50), name)
    with pytest.raises(Forbidden):
        rules.check_extension(st, CITY, 10, day(50), name)
    with pytest.raises(Conflict, match="不能再申请延期"):
        rules.check_extension(st, HRSS, 10, day(63), name)
    ext = fold(ev(ledger.EXTENDED, day(50), payload={"days": 20, "approver": "王局长", "reason": "需调查"}), state=st)
    with pytest.raises(Conflict, match="只能延期一次"):
        rules.check_extension(ext, HRSS, 5, day(55), name)
    # a second extension event (a stale command) cannot lengthen the clock again
    twice = fold(ev(ledger.EXTENDED, day(55), payload={"days": 30, "approver": "x", "reason": "y"}), state=ext)
    assert twice["extension"]["days"] == 20


def test_commands_need_the_right_state_and_node():
    st = signed()
    rules.check_acceptance(st, HRSS, name)
    with pytest.raises(Forbidden, match="承办机构"):
        rules.check_acceptance(st, BUREAU, name)
    with pytest.raises(Conflict, match="须先受理"):
        rules.check_reply(st, HRSS, name)
    accepted = fold(ev(ledger.ACCEPTED, day(1)), state=st)
    with pytest.raises(Conflict, match="不能重复办理"):
        rules.check_acceptance(accepted, HRSS, name)
    # a foreign acceptance does not fork the history
    assert fold(ev(ledger.ACCEPTED, day(1), agency=BUREAU), state=st)["status"] == "in_handling"
    with pytest.raises(Invalid, match="身份证"):
        rules.check_document_text("信访人510104199001011237反映的问题……")
    with pytest.raises(Invalid, match="手机"):
        rules.check_document_text("请联系13800001111了解……")


def replied(at_day=20):
    return fold(ev(ledger.ACCEPTED, day(1)), ev(ledger.REPLIED, day(at_day), payload={"text": "答复"}), state=signed())


def test_review_requested_within_30_days_of_the_reply():
    st = replied(20)
    body = rules.check_review_request(st, HRSS, day(50), DIRECTORY, name)  # day 30 after the reply
    assert body.agency == CITY_HRSS
    with pytest.raises(Invalid) as e:
        rules.check_review_request(st, HRSS, day(51), DIRECTORY, name)  # day 31
    assert "30日内" in e.value.message and "已超过复查申请期限" in e.value.message
    assert by_name(st, day(51))["review_request"]["state"] == "expired"
    with pytest.raises(Forbidden):
        rules.check_review_request(st, "510104-fy", day(30), DIRECTORY, name)


def test_review_and_re_review_to_termination():
    st = replied(20)
    st = fold(ev(ledger.REVIEW_REQUESTED, day(25), payload={"body": CITY_HRSS}, audience=(CITY_HRSS,)), state=st)
    assert CITY_HRSS in st["audience"] and st["status"] == "review_requested"
    c = by_name(st, day(30))["review_decision"]
    assert c["due_date"] == "2030-04-25" and c["responsible"] == CITY_HRSS
    with pytest.raises(Forbidden, match="复查机关"):
        rules.check_review_decision(st, HRSS, name)
    rules.check_review_decision(st, CITY_HRSS, name)
    st = fold(ev(ledger.REVIEW_DECIDED, day(40), CITY_HRSS, {"outcome": "维持", "text": "复查"}), state=st)
    assert st["status"] == "reviewed" and by_name(st, day(41))["review_decision"]["state"] == "met"
    body = rules.check_re_review_request(st, CITY_HRSS, day(60), DIRECTORY, name)
    assert body.agency == CITY  # no province body in the federation: the city's petition bureau (本级人民政府)
    with pytest.raises(Invalid, match="复核申请期限"):
        rules.check_re_review_request(st, CITY_HRSS, day(71), DIRECTORY, name)
    st = fold(ev(ledger.RE_REVIEW_REQUESTED, day(60), CITY_HRSS, {"body": CITY}), state=st)
    st = fold(ev(ledger.RE_REVIEW_DECIDED, day(70), CITY, {"outcome": "维持", "text": "复核"}), state=st)
    assert st["status"] == "terminated" and st["terminated"]["reason"] == "三级终结"
    assert [c["state"] for c in ledger.clocks(st, day(200))] == ["met"] * 6
    for check in (lambda: rules.check_review_request(st, HRSS, day(71), DIRECTORY, name),
                  lambda: rules.check_acceptance(st, HRSS, name)):
        with pytest.raises(Conflict, match="三级终结"):
            check()


def test_higher_body():
    assert rules.higher_body(DIRECTORY, HRSS).agency == CITY_HRSS
    assert rules.higher_body(DIRECTORY, "510104-fy").agency == CITY  # no city court: the city's bureau
    assert rules.higher_body(DIRECTORY, CITY_HRSS, exclude={HRSS}).agency == CITY
    assert rules.higher_body(DIRECTORY, BUREAU).agency == CITY
    assert rules.higher_body(DIRECTORY, CITY) is None


# --- 督查督办 -------------------------------------------------------------------------------------

def notices(state, now, remind=(3,)):
    return rules.pending_notices(state, now, remind_days=remind, supervisor=BUREAU,
                                 escalation=rules.escalation_bureau(DIRECTORY, BUREAU), names=name)


def as_events(ns, at):
    return [ev(n.type, at, BUREAU, n.payload, id_=n.id) for n in ns]


def test_supervisor_is_one_node():
    st = signed()
    assert rules.supervising_bureau(DIRECTORY, st) == BUREAU
    assert rules.escalation_bureau(DIRECTORY, BUREAU) == CITY
    no_county_bureau = dict(st, audience=[CITY, HRSS])
    assert rules.supervising_bureau(DIRECTORY, no_county_bureau) == CITY


def test_reminder_breach_order_and_escalation():
    st = signed()
    assert notices(st, day(11)) == []
    ns = notices(st, day(12))
    assert [n.type for n in ns] == [ledger.SUPERVISION_REMINDER]
    assert ns[0].payload["days_left"] == 3 and ns[0].payload["addressed_to"] == HRSS
    st = fold(*as_events(ns, day(12)), state=st)
    assert notices(st, day(13)) == []  # reminded once
    assert rules.next_check(st, day(13), (3,)).isoformat() == "2030-03-17"
    ns = notices(st, day(16))
    assert [n.type for n in ns] == [ledger.ACCOUNTABILITY, ledger.SUPERVISION_ORDER]
    order = ns[1].payload
    assert order["level"] == "督办" and order["addressed_to"] == HRSS and order["supervisor"] == BUREAU
    assert order["days_late"] == 1 and "督办" in order["note"]
    assert ns[0].payload["body"] == HRSS and ns[0].payload["breach_no"] == 1
    again = notices(st, day(16))
    assert [n.id for n in again] == [n.id for n in ns]  # deterministic ids: a rebuilt checker issues the same
    st = fold(*as_events(ns, day(16)), state=st)
    assert notices(st, day(17)) == []
    # accepted late; the handling clock then breaches too: the second breach is 挂牌督办 at the next level
    st = fold(ev(ledger.ACCEPTED, day(17)), state=st)
    assert notices(st, day(17)) == []
    ns = notices(st, day(78))
    assert [n.type for n in ns] == [ledger.ACCOUNTABILITY, ledger.SUPERVISION_ORDER]
    assert ns[1].payload["level"] == "挂牌督办" and ns[1].payload["supervisor"] == CITY
    assert CITY in ns[1].audience and ns[0].payload["breach_no"] == 2
    st = fold(*as_events(ns, day(78)), state=st)
    assert "listed_supervision" in st["flags"] and len(st["orders"]) == 2
    assert rules.next_check(st, day(78), (3,)) is None


def test_a_clock_met_late_is_accounted_for_without_an_order():
    st = fold(ev(ledger.ACCEPTED, day(18)), state=signed())  # nobody checked while it ran late
    ns = notices(st, day(18))
    assert [n.type for n in ns] == [ledger.ACCOUNTABILITY] and ns[0].payload["days_late"] == 3


# --- 考核 ----------------------------------------------------------------------------------------

def test_assessment_formulas():
    def case(cid, *more, registered=T0, flags=()):
        reg = dict(REGISTERED, id=f"{cid}-r", case_id=cid, time=registered.astimezone(timezone.utc).isoformat())
        reg["payload"] = dict(reg["payload"], flags=list(flags))
        return [reg, *[dict(e, case_id=cid) for e in SIGNED], *[dict(e, case_id=cid) for e in more]]

    rate = lambda r, s="不满意": ev(ledger.SATISFACTION_RATED, day(r), payload={"rating": s})  # noqa: E731
    cases = [
        case("A", ev(ledger.ACCEPTED, day(3)), ev(ledger.REPLIED, day(20)), rate(21, "满意")),
        case("B", ev(ledger.ACCEPTED, day(16)), ev(ledger.REPLIED, day(70)), rate(71),
             ev(ledger.REVIEW_REQUESTED, day(75), payload={"body": CITY_HRSS})),
        case("C", ev(ledger.ACCEPTED, day(5))),
        case("D", ev(ledger.DECLINED, day(2), payload={"reason": "不属于信访事项"})),
        case("E", ev(ledger.ACCEPTED, day(1)), ev(ledger.REPLIED, day(10)), ev(ledger.REPEAT_LINKED, day(12)),
             flags=["skipped_level"]),
        case("F", registered=day(-40)),  # registered before the period
    ]
    r = assessment.assess(cases, date_from=T0.date(), date_to=day(100).date(), now=day(100))
    t = r["total"]
    assert t["cases"] == 5 and r["cases"] == ["A", "B", "C", "D", "E"]
    assert t["timely_acceptance"] == {"numerator": 4, "denominator": 5, "rate": 0.8}
    assert t["on_time_completion"] == {"numerator": 3, "denominator": 4, "rate": 0.75}
    assert t["evaluation_participation"] == {"numerator": 2, "denominator": 3, "rate": 0.6667}
    assert t["satisfaction"] == {"numerator": 1, "denominator": 2, "rate": 0.5}
    assert t["first_time_resolution"] == {"numerator": 1, "denominator": 3, "rate": 0.3333}
    assert t["repeat_rate"] == {"numerator": 1, "denominator": 5, "rate": 0.2}
    assert t["skipped_level_visits"] == 1
    assert t["overdue"]["acceptance_notice"] == 1 and t["overdue"]["handling"] == 1 and t["overdue"]["total"] == 2
    assert r["by_agency"][0]["agency"] == HRSS and r["by_agency"][0]["cases"] == 5
    assert r["by_division"][0]["division"] == "510104"
    # as of an earlier end date, the same cases are judged by what had happened by then
    early = assessment.assess(cases, date_from=T0.date(), date_to=day(10).date(), now=day(100))["total"]
    assert early["timely_acceptance"] == {"numerator": 4, "denominator": 4, "rate": 1.0}  # B still running
    assert early["evaluation_participation"]["denominator"] == 1  # only E replied by then
    csv_text = assessment.to_csv(r)
    assert csv_text.startswith("\ufeff维度,代码,名称,件数,及时受理率") and "0.8000" in csv_text and "4/5" in csv_text
    empty = assessment.assess([], date_from=T0.date(), date_to=day(1).date(), now=day(100))["total"]
    assert empty["satisfaction"]["rate"] is None


# --- the injectable clock -------------------------------------------------------------------------

def test_clock_offset_file(tmp_path, monkeypatch):
    f = tmp_path / "clock.json"
    monkeypatch.setenv(clock.ENV_VAR, str(f))
    real = datetime.now(timezone.utc)
    assert abs((clock.now() - real).total_seconds()) < 5  # no file yet: real time
    clock.set_offset(timedelta(days=14))
    assert abs((clock.now() - real - timedelta(days=14)).total_seconds()) < 5
    clock.advance(timedelta(days=2))
    assert clock.offset() == timedelta(days=16)
    target = datetime(2031, 1, 1, 12, tzinfo=timezone.utc)
    clock.travel_to(target)
    assert abs((clock.now() - target).total_seconds()) < 5
    f.write_text("not json")
    assert abs((clock.now() - target).total_seconds()) < 5  # an unreadable file keeps the last offset
    monkeypatch.delenv(clock.ENV_VAR)
    assert clock.offset() == timedelta(0)
