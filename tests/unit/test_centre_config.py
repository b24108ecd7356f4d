"""联合接访中心 config: the default file, validation with clear errors (file, line, rule), gaps, hosting."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.joint_reception.app import DEFAULT_CENTRE, hosted_centre
from services.joint_reception.domain.centre import CentreConfigError, gaps, load_centre, parse_centre
from services.joint_reception.domain.sessions import Commitment, commitment_problem, hearing_problem
from shared.config import NodeConfig

BASE = """\
[centre]
host = "510104-xfj"
name = "锦江区联合接访中心"

[topics]
"养老保险" = "劳动社保"
"最低生活保障" = "社会救助"

[[window]]
id = "rsj"
agency = "510104-rsj"
name = "人社窗口"
prefix = "R"
categories = ["劳动社保"]

[[window]]
id = "mzj"
agency = "510104-mzj"
name = "民政窗口"
prefix = "M"
topics = ["最低生活保障"]

[[sensitive_period]]
name = "国庆"
from = 2026-10-01
to = 2026-10-07
"""


def centre_with(extra: str = "", base: str = BASE):
    return parse_centre(base + extra, "centre.toml")


def refused(text: str) -> str:
    with pytest.raises(CentreConfigError) as e:
        parse_centre(text, "centre.toml")
    return str(e.value)


def test_default_file_is_valid_and_routes_topics_to_windows():
    c = load_centre(DEFAULT_CENTRE)
    assert c.host == "510104-xfj"
    assert [w.agency for w in c.windows_for("养老保险")] == ["510104-rsj"]
    assert [w.agency for w in c.windows_for("最低生活保障")] == ["510104-mzj"]
    assert c.category_of("养老保险") == "劳动社保"
    assert all(len(d.people) >= 2 for d in c.roster.values() if c.sensitive_period(d.day))
    unassigned = [g for g in gaps(c, date(2026, 11, 1), c.roster, c.leader_days) if g["kind"] == "leader_day_unassigned"]
    assert [g["date"] for g in unassigned] == ["2026-12-09"]


def test_windows_take_topics_by_category_and_by_name():
    c = centre_with()
    assert c.windows_for("养老保险")[0].id == "rsj"
    assert c.window("mzj").topics == ("最低生活保障",)
    assert c.division is None  # the hosting node's division, filled in at start


def test_sensitive_day_with_one_person_on_duty_is_refused_with_the_line():
    msg = refused(BASE + '\n[[duty]]\ndate = 2026-10-01\npeople = ["张三"]\n')
    line = (BASE + "\n").count("\n") + 1
    assert f"centre.toml line {line}" in msg and "[[duty]] 2026-10-01" in msg
    assert "敏感日（国庆）" in msg and "双人值班" in msg and "现仅1人（张三）" in msg and "at least 2" in msg


def test_roster_rules():
    c = centre_with('\n[[duty]]\ndate = 2026-10-02\npeople = ["张三", "李四"]\nlead = "王五"\n'
                    '\n[[duty]]\ndate = 2026-10-08\npeople = ["张三"]\n')
    assert c.roster[date(2026, 10, 2)].people == ("张三", "李四") and c.roster[date(2026, 10, 2)].lead == "王五"
    assert c.roster[date(2026, 10, 8)].people == ("张三",)  # the day after the period: one person is enough
    assert c.duty_problem(date(2026, 10, 3), ["张三"]) is not None
    assert c.duty_problem(date(2026, 10, 3), ["张三", "李四"]) is None
    assert "重复" in c.duty_problem(date(2026, 10, 3), ["张三", "张三"])
    assert "不能为空" in refused(BASE + '\n[[duty]]\ndate = 2026-11-01\npeople = []\n')
    assert "duplicate roster day" in refused(BASE + '\n[[duty]]\ndate = 2026-11-01\npeople = ["甲"]\n' * 2)


@pytest.mark.parametrize("change,message", [
    (('"最低生活保障" = "社会救助"', '"最低生活保障" = "低保"'), "unknown category '低保'"),
    (('topics = ["最低生活保障"]', 'topics = ["临时救助"]'), "topic not defined in [topics]"),
    (('prefix = "M"', 'prefix = "R"'), "prefix already used"),
    (('prefix = "M"', 'prefix = "MM"'), "prefix must be one letter"),
    (('id = "mzj"', 'id = "rsj"'), "duplicate window id 'rsj'"),
    (('agency = "510104-mzj"', 'agency = "民政局"'), "not an agency id"),
    (('to = 2026-10-07', 'to = 2026-09-07'), "is before from"),
    (('from = 2026-10-01', 'from = "十月一日"'), "a date like 2026-10-01"),
    (('name = "民政窗口"', 'name = "民政窗口"\nopen = "9:00"'), "unknown key(s) open"),
    (('host = "510104-xfj"\n', ''), "missing host"),
    (('[[window]]\nid = "mzj"', '[[window]]\nid = "mzj"\nagency_type = "civil_affairs"'), "unknown key(s) agency_type"),
])
def test_config_errors_name_what_is_wrong(change, message):
    old, new = change
    assert old in BASE
    assert message in refused(BASE.replace(old, new, 1))


def test_topic_without_window_and_structural_errors():
    assert "没有窗口受理" in refused(BASE.replace('"最低生活保障" = "社会救助"', '"最低生活保障" = "社会救助"\n"征地拆迁" = "征地拆迁"'))
    assert "not valid TOML" in refused(BASE + "\n[[window\n")
    assert "missing [centre]" in refused(BASE.split("[topics]")[1].join(["[topics]", ""]))
    assert "unknown section(s) windows" in refused(BASE + '\n[[windows]]\nid = "x"\n')
    mzj_line = BASE.splitlines().index('id = "mzj"')  # 0-based index of the id line = 1-based line of [[window]]
    msg = refused(BASE.replace('prefix = "M"', 'prefix = "R"'))
    assert f"line {mzj_line} ([[window]] mzj)" in msg


def test_leader_days_and_gaps():
    c = centre_with('\n[[leader_day]]\ndate = 2026-09-28\nleader = "王建国"\ntitle = "区委副书记"\ntopics = ["养老保险"]\n'
                    '\n[[leader_day]]\ndate = 2026-09-30\nleader = ""\ntopics = ["社会救助"]\n'
                    '\n[[leader_day]]\ndate = 2026-09-20\n')
    assert c.leader_days[date(2026, 9, 28)].leader == "王建国"
    found = gaps(c, date(2026, 9, 25), c.roster, c.leader_days, {"510104-rsj"}, horizon_days=10)
    kinds = [(g["kind"], g.get("date") or g.get("window")) for g in found]
    assert ("leader_day_unassigned", "2026-09-30") in kinds
    assert ("leader_day_unassigned", "2026-09-20") not in kinds  # past days are not gaps any more
    assert [k for k in kinds if k[0] == "sensitive_day_without_duty"] == [
        ("sensitive_day_without_duty", f"2026-10-0{i}") for i in range(1, 6)]
    assert ("window_agency_unknown", "mzj") in kinds
    gap = next(g for g in found if g["kind"] == "leader_day_unassigned")
    assert "尚未安排接访领导" in gap["message"] and gap["topics"] == ["社会救助"]
    assert "unknown topic or category '养老'" in refused(BASE + '\n[[leader_day]]\ndate = 2026-09-28\ntopics = ["养老"]\n')


def _node(tmp_path: Path, agency: str, type_: str, centre: Path | None = None) -> NodeConfig:
    return NodeConfig(agency=agency, name=agency, type=type_, division="510104", level="county", data_dir=tmp_path,
                      directory=tmp_path / "federation.toml", joint_reception_centre=centre,
                      secrets={"field_key": "A" * 43 + "=", "pseudonym_key": "A" * 43 + "="},
                      services={"joint_reception": {"http": "127.0.0.1:1", "database": "sqlite://"}})


def test_only_petition_bureaus_host_a_centre(tmp_path):
    path = tmp_path / "centre.toml"
    path.write_text(BASE, encoding="utf-8")
    assert hosted_centre(_node(tmp_path, "510104-xfj", "petition_bureau", path)).division == "510104"
    assert hosted_centre(_node(tmp_path, "510104-rsj", "hrss")) is None  # a window node: no centre of its own
    with pytest.raises(CentreConfigError, match="only petition-bureau nodes host a centre"):
        hosted_centre(_node(tmp_path, "510104-rsj", "hrss", path))
    with pytest.raises(CentreConfigError, match="names another host"):
        hosted_centre(_node(tmp_path, "510100-xfj", "petition_bureau", path))
    assert hosted_centre(_node(tmp_path, "510100-xfj", "petition_bureau"), default=path) is None


def test_commitments_only_from_participants_and_hearings_need_a_chair():
    answers = {"510104-rsj": "accepted", "510104-fy": "declined"}
    today = date(2026, 12, 1)
    assert commitment_problem(Commitment("510104-rsj", "核查缴费记录", date(2026, 12, 10)), answers, "510104-xfj", today) is None
    assert commitment_problem(Commitment("510104-xfj", "督办", date(2026, 12, 10)), answers, "510104-xfj", today) is None
    assert "已拒绝" in commitment_problem(Commitment("510104-fy", "x", date(2026, 12, 10)), answers, "510104-xfj", today)
    assert "早于今天" in commitment_problem(Commitment("510104-rsj", "x", date(2026, 11, 30)), answers, "510104-xfj", today)
    assert "主持人" in hearing_problem([{"role": "panel", "name": "甲"}], set())
    assert "agency" in hearing_problem([{"role": "chair", "name": "甲"}, {"role": "agency", "agency": "x"}], {"y"})
    assert hearing_problem([{"role": "chair", "name": "甲"}, {"role": "petitioner"}], set()) is None
