"""Pure domain rules: ID numbers, divisions, categories, risk, the ledger fold."""
from __future__ import annotations

import pytest

from shared import divisions, idnumber, ledger, risk
from shared.categories import classify
from tests.support import valid_id


def test_id_number_checksum():
    assert idnumber.problem("11010519491231002X") is None
    assert idnumber.problem(valid_id(42)) is None
    assert "校验位" in idnumber.problem("510104199001011234")
    assert "18位" in idnumber.problem("51010419900101123")
    assert "18位" in idnumber.problem("51010419900101123A")


def test_division_hierarchy():
    assert divisions.chain("510104") == ["510104", "510100", "510000"]
    assert divisions.level("510104") == "county" and divisions.level("510100") == "city"
    assert divisions.level("510000") == "province"
    assert divisions.contains("510100", "510104") and not divisions.contains("510104", "510100")
    with pytest.raises(divisions.UnknownDivision):
        divisions.name("999999")


def test_classification_and_risk():
    assert classify("公司拖欠工资三个月") == "劳动社保"
    assert classify("申请低保被拒") == "社会救助"
    assert classify("今天天气很好") is None
    assert risk.assess(collective=False, repeat_count=0, text="普通事项") == {"level": None, "reasons": []}
    assert risk.assess(collective=True, repeat_count=0, text="")["level"] == "二级"
    high = risk.assess(collective=True, repeat_count=2, text="不解决就去北京，扬言跳楼")
    assert high["level"] == "一级" and len(high["reasons"]) == 4


def _ev(type_, agency, payload=None, n=[0]):
    n[0] += 1
    return {"id": f"e{n[0]}", "case_id": "C1", "type": type_, "agency": agency, "actor": "x",
            "time": "2026-11-22T00:00:00+00:00", "payload": payload or {}, "audience": [agency]}


REG = {"channel": "visit", "division": "510104", "category": "劳动社保", "title": "t", "persons": 1}


def test_the_routing_decision_travels_with_the_event_it_led_to_and_older_ledgers_still_fold():
    decision = {"target": "rsj", "lead": "rsj", "co_handlers": [], "rule": "labour", "reason": "规则 labour",
                "attempt": 1, "flags": ["skipped_level"], "notice": "逐级走访"}
    registered = ledger.apply(None, _ev(ledger.REGISTERED, "xfj", REG))
    for carrier, payload in ((ledger.OFFERED, {"to": "rsj"}), (ledger.MANUAL_REVIEW, {"bureau": "xfj"}),
                             (ledger.LEGAL_HANDOVER, {"attempt": 1})):
        s = ledger.apply(registered, _ev(carrier, "xfj", {**payload, "routing": decision}))
        assert s["routing"] == {k: decision[k] for k in ("target", "lead", "co_handlers", "rule", "reason", "attempt")}
        assert "skipped_level" in s["flags"], carrier
    # a ledger written before 2026-11-29 has the decision as an event of its own: the same state results
    old = ledger.apply(ledger.apply(registered, _ev(ledger.ROUTED, "xfj", decision)), _ev(ledger.OFFERED, "xfj", {"to": "rsj"}))
    new = ledger.apply(registered, _ev(ledger.OFFERED, "xfj", {"to": "rsj", "routing": decision}))
    assert {k: v for k, v in old.items() if k != "version"} == {k: v for k, v in new.items() if k != "version"}
    assert ledger.ROUTED in ledger.INTERNAL_TYPES  # (never in the petitioner's progress view)


def test_ledger_fold_sign_for_only_by_the_offered_body():
    s = ledger.apply(None, _ev(ledger.REGISTERED, "xfj", REG))
    assert s["holder"] == "xfj" and s["status"] == "registered"  # 首问负责: the receiving desk holds it
    s = ledger.apply(s, _ev(ledger.OFFERED, "xfj", {"to": "rsj"}))
    assert s["holder"] == "xfj" and s["offered_to"] == "rsj"
    stale = ledger.apply(s, _ev(ledger.SIGNED_FOR, "mzj"))  # a foreign or stale answer cannot fork history
    assert stale["holder"] == "xfj" and stale["status"] == "offered"
    s = ledger.apply(s, _ev(ledger.SIGNED_FOR, "rsj"))
    assert s["holder"] == "rsj" and s["status"] == "in_handling"
    again = ledger.apply(s, _ev(ledger.RETURNED, "rsj", {"reason": "late"}))  # already answered
    assert again["holder"] == "rsj" and again["returns"] == 0
    assert set(s["audience"]) == {"xfj", "rsj"}
