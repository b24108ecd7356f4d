"""Responsibility rules: the default table, decisions with their reasons, rule-file validation."""
from __future__ import annotations

from pathlib import Path

import pytest

from services.routing.app import DEFAULT_RULES
from services.routing.domain.rules import RuleError, decide, load_rules
from shared.config import Directory, DirectoryEntry

NODES = [("510104-xfj", "锦江区信访局", "petition_bureau", "510104", "county"),
         ("510104-rsj", "锦江区人社局", "hrss", "510104", "county"),
         ("510104-mzj", "锦江区民政局", "civil_affairs", "510104", "county"),
         ("510100-rsj", "成都市人社局", "hrss", "510100", "city"),
         ("510100-xfj", "成都市信访局", "petition_bureau", "510100", "city")]
DIRECTORY = Directory(nodes=[DirectoryEntry(agency=a, name=n, type=t, division=d, level=lv) for a, n, t, d, lv in NODES])
RULES = load_rules(DEFAULT_RULES)


def test_default_rules_route_by_category_and_division():
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="拖欠工资", origin="510104-xfj")
    assert (d.target, d.rule, d.manual) == ("510104-rsj", "labour", False)
    assert "劳动保障" in d.reason and "锦江区" in d.reason
    d = decide(RULES, DIRECTORY, category="社会救助", division="510104", text="低保", origin="510104-xfj")
    assert d.target == "510104-mzj"


def test_keyword_rule_fires_first_and_records_co_handlers():
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="农民工工地欠薪", origin="510104-xfj")
    assert d.rule == "wage-arrears-construction"  # housing is not in this federation: no co-handler node
    assert d.co_handlers == []


def test_missing_body_falls_back_to_the_bureau_of_that_level():
    d = decide(RULES, DIRECTORY, category="生态环境", division="510104", text="排污", origin="510104-xfj")
    assert d.manual and d.target == "510104-xfj" and "没有此类机构" in d.reason


def test_skipped_level_goes_down_with_a_notice():
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="欠薪", origin="510100-xfj")
    assert d.target == "510104-rsj" and "skipped_level" in d.flags and "逐级走访" in d.notice


def test_returned_body_passes_to_the_next_level_then_the_bureau():
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="欠薪", origin="510104-xfj",
               excluded={"510104-rsj"})
    assert d.target == "510100-rsj" and not d.manual
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="欠薪", origin="510104-xfj",
               excluded={"510104-rsj", "510100-rsj"})
    assert d.manual and d.target == "510104-xfj"


def test_never_routed_to_the_body_reported_on():
    d = decide(RULES, DIRECTORY, category="劳动社保", division="510104", text="", origin="510104-xfj",
               reported="510104-rsj")
    assert d.target != "510104-rsj" and d.manual


@pytest.mark.parametrize("body,message", [
    ('[[rule]]\nid = "a"\ncategory = "劳动社保"\nlead = "hrss"\nwhy = "x"\n\n[[rule]]\nid = "b"\n'
     'category = "劳动社保"\nlead = "ministry_of_magic"\nwhy = "x"\n', "line 7 (rule 'b'): unknown agency type 'ministry_of_magic'"),
    ('# c\n[[rule]]\nid = "a"\ncategory = "天气"\nlead = "hrss"\nwhy = "x"\n', "line 2 (rule 'a'): unknown category '天气'"),
    ('[[rule]]\nid = "a"\ncategory = "劳动社保"\nwhy = "x"\n', "missing lead"),
    ('[[rule]\n', "rules.toml"),
])
def test_rule_file_errors_name_the_line(tmp_path: Path, body, message):
    f = tmp_path / "rules.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(RuleError) as e:
        load_rules(f)
    assert message in str(e.value)
