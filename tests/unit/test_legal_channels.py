"""诉访分离: the legal-channel classifier and its rule file, receipt numbers, the 检调对接 order, the ledger fold."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.legal_referral.domain import notice, steps
from services.legal_referral.domain.channels import ChannelFileError, candidates, classify, load_channels, override
from services.legal_referral.domain.receipts import receipt_number
from services.legal_referral.domain.relief import from_fen, to_fen, yuan
from services.routing.app import DEFAULT_RULES
from services.routing.domain.rules import decide, load_rules
from shared import ledger
from shared.config import Directory, DirectoryEntry

NODES = [("510104-xfj", "锦江区信访局", "petition_bureau", "510104", "county"),
         ("510104-fy", "锦江区人民法院", "court", "510104", "county"),
         ("510104-jcy", "锦江区人民检察院", "procuratorate", "510104", "county"),
         ("510104-rsj", "锦江区人社局", "hrss", "510104", "county"),
         ("510104-sfj", "锦江区司法局", "justice", "510104", "county"),
         ("510104-mzj", "锦江区民政局", "civil_affairs", "510104", "county"),
         ("510100-jcy", "成都市人民检察院", "procuratorate", "510100", "city"),
         ("510100-xfj", "成都市信访局", "petition_bureau", "510100", "city")]
DIRECTORY = Directory(nodes=[DirectoryEntry(agency=a, name=n, type=t, division=d, level=lv) for a, n, t, d, lv in NODES])
CATALOGUE = load_channels()


def classified(category, text, **kw):
    return classify(CATALOGUE, DIRECTORY, category=category, text=text, division="510104", **kw)


def test_final_judgment_goes_to_the_procuratorate_for_supervision():
    c = classified("涉法涉诉", "不服县法院民事判决，申请再审被驳回")
    assert (c.channel, c.body, c.rule) == ("procuratorial_supervision", "510104-jcy", "judgment-supervision")
    assert c.channel_label == "不服生效裁判申请监督"
    assert any("不服+判决" in r for r in c.reasons) and any("锦江区人民检察院" in r for r in c.reasons)


def test_judgment_still_open_to_appeal_goes_to_the_court():
    c = classified("涉法涉诉", "不服一审判决，还在上诉期内")
    assert (c.channel, c.body, c.rule) == ("litigation_guidance", "510104-fy", "appeal-open")


def test_labour_dispute_goes_to_arbitration_but_wage_arrears_alone_do_not():
    c = classified("劳动社保", "公司解除劳动合同不给经济补偿，劳动争议")
    assert (c.channel, c.body) == ("labour_arbitration", "510104-rsj")
    assert classified("劳动社保", "公司拖欠三个月工资") is None
    # routing agrees: the dispute is a legal matter, plain arrears a petition for 人社
    rules = load_rules(DEFAULT_RULES)
    d = decide(rules, DIRECTORY, category="劳动社保", division="510104", text="解除劳动合同 经济补偿 劳动争议",
               origin="510104-xfj")
    assert d.rule == "labour-dispute" and "legal_channel" in d.flags and d.target == "510104-rsj"
    d = decide(rules, DIRECTORY, category="劳动社保", division="510104", text="拖欠工资", origin="510104-xfj")
    assert d.rule == "labour" and "legal_channel" not in d.flags


def test_report_against_judicial_staff_never_goes_to_the_body_reported_on():
    c = classified("检举控告", "检举人社局仲裁员枉法裁决", reported_agency="510104-rsj")
    assert (c.channel, c.body) == ("judicial_staff_report", "510104-jcy")
    assert all(x.body != "510104-rsj" for x in candidates(CATALOGUE, DIRECTORY, category="劳动社保",
                                                          text="劳动争议 仲裁员", division="510104",
                                                          reported_agency="510104-rsj"))
    c = classified("检举控告", "检举区检察院检察官受贿", reported_agency="510104-jcy")
    assert c.body == "510100-jcy" and any("回避" in r for r in c.reasons)  # one level up
    d = decide(load_rules(DEFAULT_RULES), DIRECTORY, category="检举控告", division="510104", text="仲裁员枉法",
               origin="510104-xfj", reported="510104-rsj")
    assert d.rule == "report-against-judicial-staff" and "legal_channel" in d.flags and d.target == "510104-jcy"


def test_other_channels():
    assert classified("涉法涉诉", "不服区市场监管局行政处罚，申请复议").channel == "administrative_reconsideration"
    assert classified("涉法涉诉", "不服复议决定").channel == "litigation_guidance"
    assert classified("涉法涉诉", "家里困难请不起律师，申请法律援助").body == "510104-sfj"
    assert classified("社会救助", "申请低保被拒").body == "510104-mzj"
    c = classified("涉法涉诉", "刑事被害人生活困难，不起诉后申请司法救助")
    assert (c.channel, c.body) == ("judicial_relief", "510104-jcy")
    assert classified("涉法涉诉", "判决执行不能，生活困难").body == "510104-fy"
    assert classified("涉法涉诉", "邻里纠纷").rule == "litigation-guidance"
    assert classified("生态环境", "工厂噪音") is None


def test_a_declined_channel_gives_the_next_candidate():
    text = "不服区市场监管局行政处罚决定，申请复议"
    first = classified("涉法涉诉", text)
    second = classified("涉法涉诉", text, excluded_channels={first.channel})
    assert (second.channel, second.rule, second.body) == ("litigation_guidance", "administrative-litigation", "510104-fy")


def test_override_is_checked_and_keeps_the_previous_classification():
    prev = classified("劳动社保", "劳动争议")
    c = override(CATALOGUE, DIRECTORY, channel_id="legal_aid", reason="经济困难", division="510104", previous=prev)
    assert c.override and c.body == "510104-sfj" and "人工改判：经济困难" in c.reasons and "劳动争议仲裁" in c.reasons[1]
    with pytest.raises(ValueError, match="channel"):
        override(CATALOGUE, DIRECTORY, channel_id="weather", reason="x", division="510104")
    with pytest.raises(ValueError, match="body"):
        override(CATALOGUE, DIRECTORY, channel_id="legal_aid", reason="x", division="510104", body_agency="510104-fy")
    with pytest.raises(ValueError, match="回避"):
        override(CATALOGUE, DIRECTORY, channel_id="judicial_staff_report", reason="x", division="510104",
                 body_agency="510104-jcy", reported_agency="510104-jcy")


@pytest.mark.parametrize("body,message", [
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n\n'
     '[[rule]]\nid = "r"\nchannel = "b"\ncategories = ["涉法涉诉"]\nwhy = "x"\n', "line 9 (rule 'r'): unknown channel 'b'"),
    ('# c\n[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["ministry"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n',
     "line 2 (channel 'a'): unknown agency type 'ministry'"),
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n\n'
     '[[rule]]\nid = "r"\nchannel = "a"\nbody = "hrss"\nkeywords = ["x"]\nwhy = "x"\n', "line 9 (rule 'r'): body 'hrss'"),
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n\n'
     '[[rule]]\nid = "r"\nchannel = "a"\ncategories = ["天气"]\nwhy = "x"\n', "line 9 (rule 'r'): unknown category '天气'"),
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n\n'
     '[[rule]]\nid = "r"\nchannel = "a"\nwhy = "x"\n', "would match everything"),
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nbring = []\ntime_limits = []\n', "missing receipt_word"),
    ('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\ntime_limits = []\n'
     'colour = "red"\n', "unknown key(s) colour"),
    ('[[channel]\n', "channels.toml"),
])
def test_channel_file_errors_name_the_line(tmp_path: Path, body, message):
    f = tmp_path / "channels.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ChannelFileError) as e:
        load_channels(f)
    assert message in str(e.value)


def test_receipt_numbers():
    assert receipt_number("510104", 2026, "诉引", 123) == "(2026)川0104诉引123号"
    assert receipt_number("510100", 2026, "民监", 1) == "(2026)川01民监1号"
    assert receipt_number("110105", 2026, "劳仲", 7) == "(2026)京0105劳仲7号"


def test_notice_names_channel_body_materials_and_time_limits():
    n = notice.compose(CATALOGUE.channel("labour_arbitration"), case_title="解除劳动合同争议", registered_on="2026年11月1日",
                       body_name="锦江区人社局", receipt_no="(2026)川0104劳仲3号", referring_name="锦江区信访局",
                       issued_on="2026年11月2日")
    assert n["title"] == "导入法律程序告知书"
    for part in ("劳动争议仲裁", "锦江区人社局", "(2026)川0104劳仲3号", "仲裁申请书", "一年"):
        assert part in n["text"]


def test_relief_amounts():
    assert str(yuan("30000")) == "30000.00" and to_fen(yuan("12.34")) == 1234 and from_fen(1234) == "12.34"
    for bad in ("0", "-1", "1.234", "abc", "20000000"):
        with pytest.raises(ValueError):
            yuan(bad)


def _done(*names, hearing=False):
    return [{"step": n, "date": "2026-11-0%d" % (i + 1), "hearing": hearing and n == "风险评估"}
            for i, n in enumerate(names)]


def test_five_plus_one_in_order():
    d = date(2026, 11, 20)
    steps.check_step([], "书面告知", d)
    with pytest.raises(steps.StepRefused) as e:
        steps.check_step(_done("书面告知"), "预调解", d)
    assert e.value.missing == "风险评估" and "风险评估" in str(e.value)
    with pytest.raises(steps.StepRefused) as e:
        steps.check_step([], "公开听证", d)
    assert e.value.missing == "书面告知"
    four = _done("书面告知", "风险评估", "预调解", "监督和解", hearing=True)
    with pytest.raises(steps.StepRefused) as e:
        steps.check_step(four, "跟踪回访", d)
    assert e.value.missing == "公开听证"
    steps.check_step(_done("书面告知", "风险评估", "预调解", "监督和解"), "跟踪回访", d)  # hearing not chosen
    with pytest.raises(steps.StepRefused, match="重复"):
        steps.check_step(_done("书面告知"), "书面告知", d)
    with pytest.raises(steps.StepRefused, match="早于"):
        steps.check_step(_done("书面告知"), "风险评估", date(2026, 10, 1))
    assert steps.next_steps(_done("书面告知", "风险评估")) == ["预调解", "公开听证"]


def _ev(type_, agency, payload, n=[0]):
    n[0] += 1
    return {"id": str(n[0]), "case_id": "c1", "type": type_, "agency": agency, "actor": "t", "payload": payload,
            "audience": [agency], "time": f"2026-11-01T0{n[0] % 10}:00:00+00:00"}


def test_ledger_fold_of_a_referral():
    s = ledger.apply(None, _ev(ledger.REGISTERED, "x", {"category": "涉法涉诉", "division": "510104", "channel": "visit",
                                                         "title": "t", "persons": 1}))
    s = ledger.apply(s, _ev(ledger.LEGAL_HANDOVER, "x", {"attempt": 1}))
    assert s["status"] == "legal_review"
    s = ledger.apply(s, _ev(ledger.REFERRED, "x", {"attempt": 1, "to": "sfj", "channel": "a", "channel_label": "A"}))
    s = ledger.apply(s, _ev(ledger.REFERRAL_ACCEPTED, "fy", {"attempt": 1, "receipt_no": "forged"}))  # not the body
    assert s["status"] == "referred" and s["holder"] == "x"
    s = ledger.apply(s, _ev(ledger.REFERRAL_DECLINED, "sfj", {"attempt": 1, "reason": "超期"}))
    s = ledger.apply(s, _ev(ledger.REFERRED, "x", {"attempt": 2, "to": "fy", "channel": "b", "channel_label": "B"}))
    s = ledger.apply(s, _ev(ledger.REFERRAL_ACCEPTED, "sfj", {"attempt": 1, "receipt_no": "stale"}))  # stale answer
    assert s["status"] == "referred"
    s = ledger.apply(s, _ev(ledger.REFERRAL_ACCEPTED, "fy", {"attempt": 2, "receipt_no": "(2026)川0104诉引1号"}))
    assert (s["status"], s["holder"], s["legal"]["receipt_no"]) == ("legal_accepted", "fy", "(2026)川0104诉引1号")
    assert s["legal"]["declines"][0]["reason"] == "超期"
    s = ledger.apply(s, _ev(ledger.LEGAL_NOTICE, "x", {"notice": {"title": "导入法律程序告知书", "text": "…"}}))
    assert s["acceptance"]["decision"] == "legal_channel"  # the 15-day acceptance clock is answered
    s = ledger.apply(s, _ev(ledger.REFERRAL_DECIDED, "fy", {"attempt": 2, "note": "判决"}))
    assert s["status"] == "legal_decided"
    s = ledger.apply(s, _ev(ledger.RELIEF_REQUESTED, "x", {"request_id": "r1", "kind": "judicial_relief", "to": "fy",
                                                           "amount_requested": "100.00", "basis": "b"}))
    s = ledger.apply(s, _ev(ledger.RELIEF_DECIDED, "sfj", {"request_id": "r1", "approved": True, "amount_granted": "1"}))
    assert s["relief"][0]["status"] == "requested"  # only the body asked decides
    s = ledger.apply(s, _ev(ledger.RELIEF_DECIDED, "fy", {"request_id": "r1", "approved": True, "amount_granted": "80.00"}))
    assert s["relief"][0]["status"] == "approved" and s["relief"][0]["amount_granted"] == "80.00"
