"""Issue 6, 诉访分离: legal referral across real nodes — classification, referral over gRPC with a receipt,
the written notice, declines and overrides, 检调对接 "5+1", relief, and whistleblower protection."""
from __future__ import annotations

import re
import subprocess
import sys
import time

from shared import federation, wakeup
from shared.launcher import REPO
from tests.support import valid_id, wait_for

XFJ, FY, JCY, RSJ, SFJ, MZJ = "510104-xfj", "510104-fy", "510104-jcy", "510104-rsj", "510104-sfj", "510104-mzj"
NODES = [(XFJ, "锦江区信访局", "petition_bureau", "510104"),
         (FY, "锦江区人民法院", "court", "510104"),
         (JCY, "锦江区人民检察院", "procuratorate", "510104"),
         (RSJ, "锦江区人力资源和社会保障局", "hrss", "510104"),
         (SFJ, "锦江区司法局", "justice", "510104"),
         (MZJ, "锦江区民政局", "civil_affairs", "510104")]


def nodes(*agencies: str) -> list[tuple[str, str, str, str]]:
    """A federation of just the bodies a scenario needs (fewer processes on a busy machine)."""
    return [n for n in NODES if n[0] in agencies]


def petition(n: int, title: str, content: str, category: str, **over) -> dict:
    body = {"channel": "visit", "division": "510104", "title": title, "content": content, "category": category,
            "persons": 1, "petitioner": {"name": f"申请人{n}", "id_number": valid_id(n)}}
    body.update(over)
    return body


def view(fed, agency, case_id):
    st, body = fed.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
    return body if st == 200 else None


def until(fed, agency, case_id, test, what):
    """The case view once `test` holds; a view still missing what `test` reads (a receipt not folded yet
    on that node) is not there yet."""
    def ready():
        v = view(fed, agency, case_id)
        try:
            return v is not None and test(v) and v
        except (KeyError, TypeError, IndexError):
            return None
    return wait_for(ready, timeout=30, what=what)


def legal(fed, agency, role="clerk"):
    return fed.client(agency, role, service="legal_referral")


# (Run with the services' safety polls out of reach: referrals and their answers move on wake-ups alone.)
NO_POLL = {wakeup.IDLE_ENV: "600"}


def test_supervision_labour_arbitration_steps_and_relief(start_federation):
    fed = start_federation(nodes(XFJ, JCY, RSJ, MZJ), env=NO_POLL)
    # 不服生效民事判决 → the procuratorate (申请监督), accepted at once (auto_sign_for), receipt on the case
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(
        61, "不服县法院民事判决", "本人不服锦江区人民法院作出的民事判决，该判决已发生法律效力，申请再审已被驳回，请求监督纠正。",
        "涉法涉诉"))
    assert st == 201, r
    case_id = r["case_id"]
    v = until(fed, XFJ, case_id, lambda v: v["status"] == "legal_accepted" and v["legal"]["notice"], "referral accepted")
    assert v["holder"] == JCY and v["legal"]["channel"] == "procuratorial_supervision"
    receipt = v["legal"]["receipt_no"]
    assert re.fullmatch(r"\(20\d\d\)川0104民监\d+号", receipt), receipt
    types = [e["type"] for e in v["events"]]
    assert "case.offered" not in types  # 诉访分离: never offered to the bureau as a petition
    assert types[:3] == ["case.registered", "case.legal_handover", "case.legal_classified"]
    classified = v["legal"]["classification"]
    assert classified["rule"] == "judgment-supervision" and any("不服+判决" in x for x in classified["reasons"])
    text = v["legal"]["notice"]["text"]
    for part in ("不服生效裁判申请监督", "锦江区人民检察院", receipt, "六个月", "监督申请书"):
        assert part in text, part
    assert "申请人61" not in text  # the notice carries no personal data (it travels on the ledger)
    # … the petitioner reads it with the query code; the holder reads the same case
    st, q = fed.client(XFJ).get(f"/api/v1/query/{r['query_code']}")
    assert st == 200 and q["legal_notice"]["receipt_no"] == receipt and q["status"] == "legal_accepted"
    assert all(p["step"] != "法律渠道分类" for p in q["progress"])  # the internal classification stays internal
    assert until(fed, JCY, case_id, lambda v: v["legal"]["receipt_no"] == receipt, "case at the procuratorate")
    st, mine = fed.client(JCY, "handler").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st == 200 and mine["petitioners"][0]["name"] == "申请人61"  # the handling body may fetch identity
    st, n = legal(fed, XFJ).get(f"/api/v1/legal/cases/{case_id}/notice")
    assert st == 200 and n["receipt_no"] == receipt

    # 检调对接 5+1 at the procuratorate, in order; a skipped step is refused and named
    steps_api = legal(fed, JCY, "handler")
    path = f"/api/v1/referrals/{case_id}/steps"
    st, _ = steps_api.post(path, {"step": "书面告知", "date": "2026-11-02", "outcome": "已书面告知申请人权利义务"})
    assert st == 200
    st, err = steps_api.post(path, {"step": "预调解", "date": "2026-11-03", "outcome": "x"})
    assert st == 409 and err["error"]["missing_step"] == "风险评估" and "风险评估" in err["error"]["message"]
    assert steps_api.post(path, {"step": "风险评估", "date": "2026-11-03", "outcome": "风险较低，宜公开听证",
                                 "hearing": True})[0] == 200
    assert steps_api.post(path, {"step": "预调解", "date": "2026-11-05", "outcome": "双方同意调解"})[0] == 200
    assert steps_api.post(path, {"step": "监督和解", "date": "2026-11-10", "outcome": "达成和解协议"})[0] == 200
    st, err = steps_api.post(path, {"step": "跟踪回访", "date": "2026-11-20", "outcome": "x"})
    assert st == 409 and err["error"]["missing_step"] == "公开听证"
    assert steps_api.post(path, {"step": "公开听证", "date": "2026-11-12", "outcome": "听证员一致同意和解"})[0] == 200
    st, out = steps_api.post(path, {"step": "跟踪回访", "date": "2026-11-20", "outcome": "申请人表示满意，息诉罢访"})
    assert st == 200 and out["next_steps"] == []
    st, err = legal(fed, RSJ, "handler").post(path, {"step": "书面告知", "date": "2026-11-02", "outcome": "x"})
    assert st == 404  # only the body that received the referral records its steps
    assert steps_api.post(f"/api/v1/referrals/{case_id}/status", {"status": "filed", "reference": "川0104民监受1号"})[0] == 200
    assert steps_api.post(f"/api/v1/referrals/{case_id}/status", {"status": "decided", "note": "和解结案"})[0] == 200
    v = until(fed, XFJ, case_id, lambda v: v["status"] == "legal_decided" and len(v["legal"]["steps"]) == 6,
              "steps and decision on the referring node")
    assert [x["step"] for x in v["legal"]["steps"]] == ["书面告知", "风险评估", "预调解", "监督和解", "公开听证", "跟踪回访"]

    # 劳动争议 (解除劳动合同、经济补偿) → 劳动争议仲裁 at the 人社局, not a petition offer
    st, lab = fed.client(XFJ).post("/api/v1/petitions", petition(
        62, "解除劳动合同争议", "公司违法解除劳动合同，拒付经济补偿，属劳动争议，请求处理。", "劳动社保"))
    v = until(fed, XFJ, lab["case_id"], lambda v: v["status"] == "legal_accepted" and v["legal"]["notice"],
              "labour dispute accepted")
    assert v["holder"] == RSJ and v["legal"]["channel"] == "labour_arbitration" and v["routing"]["rule"] == "labour-dispute"
    assert re.fullmatch(r"\(20\d\d\)川0104劳仲\d+号", v["legal"]["receipt_no"])
    assert "一年" in v["legal"]["notice"]["text"] and "劳动争议仲裁" in v["legal"]["notice"]["text"]
    # … while plain wage arrears stay a petition signed for by the 人社局
    st, arrears = fed.client(XFJ).post("/api/v1/petitions", petition(63, "拖欠工资", "公司拖欠三个月工资未发。", "劳动社保"))
    v = until(fed, XFJ, arrears["case_id"], lambda v: v["status"] == "in_handling", "arrears signed for")
    assert v["holder"] == RSJ and v["legal"] is None

    # 救助: requests with amount and basis; the deciding body approves an amount or refuses; totals add up
    relief = legal(fed, XFJ)
    st, j = relief.post(f"/api/v1/legal/cases/{case_id}/relief", {"kind": "judicial_relief", "amount": "50000",
                                                                  "basis": "因案致贫，家庭无其他收入来源"})
    assert st == 201 and j["to"] == JCY, j  # the procuratorate handling the case decides 司法救助
    st, s1 = relief.post(f"/api/v1/legal/cases/{lab['case_id']}/relief", {"kind": "social_assistance",
                                                                          "amount": "2500.50", "basis": "失业后生活困难"})
    st, s2 = relief.post(f"/api/v1/legal/cases/{lab['case_id']}/relief", {"kind": "social_assistance", "amount": "3000",
                                                                          "basis": "重复申请"})
    assert st == 201 and s2["to"] == MZJ
    st, err = relief.post(f"/api/v1/legal/cases/{case_id}/relief", {"kind": "legal_aid", "amount": "1", "basis": "xx"})
    assert st == 422 and err["error"]["field"] == "kind"
    st, err = relief.post(f"/api/v1/legal/cases/{case_id}/relief", {"kind": "judicial_relief", "amount": "-5",
                                                                    "basis": "xx"})
    assert st == 422 and err["error"]["field"] == "amount"

    def received(agency, request_id):
        st, body = legal(fed, agency).get(f"/api/v1/relief/{request_id}")
        return st == 200 and body["status"] == "accepted" and body
    got = wait_for(lambda: received(JCY, j["request_id"]), what="relief request receipted")
    assert re.fullmatch(r"\(20\d\d\)川0104司救\d+号", got["receipt_no"]) and got["amount_requested"] == "50000.00"
    st, err = legal(fed, JCY).post(f"/api/v1/relief/{j['request_id']}/decision", {"approve": True,
                                                                                   "amount_granted": "60000"})
    assert st == 422 and err["error"]["field"] == "amount_granted"  # not more than requested
    assert legal(fed, JCY).post(f"/api/v1/relief/{j['request_id']}/decision",
                                {"approve": True, "amount_granted": "30000"})[0] == 200
    wait_for(lambda: received(MZJ, s1["request_id"]) and received(MZJ, s2["request_id"]), what="民政 receipts")
    assert legal(fed, MZJ).post(f"/api/v1/relief/{s1['request_id']}/decision",
                                {"approve": True, "amount_granted": "2000"})[0] == 200
    assert legal(fed, MZJ).post(f"/api/v1/relief/{s2['request_id']}/decision",
                                {"approve": False, "reason": "同一困难已获临时救助"})[0] == 200
    assert legal(fed, MZJ).post(f"/api/v1/relief/{s2['request_id']}/decision",
                                {"approve": True, "amount_granted": "1"})[0] == 409  # decided once

    def totals():
        st, t = legal(fed, XFJ).get("/api/v1/relief/totals")
        return t if t["total"]["open"] == 0 and t["total"]["requests"] == 3 else None
    t = wait_for(totals, what="relief totals on the bureau")
    per = {a["agency"]: a for a in t["agencies"]}
    assert (per[JCY]["amount_requested"], per[JCY]["amount_granted"], per[JCY]["approved"]) == ("50000.00", "30000.00", 1)
    assert (per[MZJ]["requests"], per[MZJ]["amount_requested"], per[MZJ]["amount_granted"]) == (2, "5500.50", "2000.00")
    assert (per[MZJ]["approved"], per[MZJ]["refused"]) == (1, 1)
    assert t["total"]["amount_requested"] == "55500.50" and t["total"]["amount_granted"] == "32000.00"
    v = until(fed, XFJ, case_id, lambda v: v["relief"] and v["relief"][0]["status"] == "approved", "relief on the case")
    assert v["relief"][0]["amount_granted"] == "30000.00" and v["relief"][0]["receipt_no"] == got["receipt_no"]


def test_report_against_hrss_never_reaches_it(start_federation):
    fed = start_federation(nodes(XFJ, JCY, RSJ))
    name, id_number, phone = "钱检举", valid_id(77), "13800000077"
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(
        77, "检举劳动仲裁员枉法裁决", "锦江区劳动人事争议仲裁院仲裁员在审理一起劳动争议仲裁案件中收受用人单位财物，枉法裁决。",
        "检举控告", reported_agency=RSJ, petitioner={"name": name, "id_number": id_number, "phone": phone}))
    assert st == 201, r
    case_id = r["case_id"]
    v = until(fed, XFJ, case_id, lambda v: v["status"] == "legal_accepted" and v["legal"]["notice"], "report referred")
    assert v["holder"] == JCY and v["legal"]["channel"] == "judicial_staff_report"
    assert v["routing"]["rule"] == "report-against-judicial-staff"
    assert all(e["agency"] != RSJ for e in v["events"])
    # the procuratorate handles it and may see who reported (positive control for the search below),
    # once its own read model has the case (it folds behind the bureau's by up to a linger)
    until(fed, JCY, case_id, lambda v: v["status"] == "legal_accepted", "report on the procuratorate's node")
    st, seen = fed.client(JCY, "handler").get(f"/api/v1/cases/{case_id}?identity=true")
    assert st == 200 and seen["petitioners"][0]["name"] == name and seen["petitioners"][0]["id_number"] == id_number
    # the 人社局 answers nothing about the case
    rsj = fed.client(RSJ, "handler")
    assert rsj.get(f"/api/v1/cases/{case_id}")[0] == 404
    assert rsj.get(f"/api/v1/cases/{case_id}?identity=true")[0] == 404
    answers = [rsj.get(f"/api/v1/cases/{case_id}?identity=true")[1],
               legal(fed, RSJ).get(f"/api/v1/referrals/{case_id}"), legal(fed, RSJ).get(f"/api/v1/legal/cases/{case_id}"),
               legal(fed, RSJ).get("/api/v1/referrals?status=accepted"), legal(fed, RSJ).get("/api/v1/relief/totals"),
               fed.client(RSJ, "handler", service="routing").get("/api/v1/offers"),
               fed.client(RSJ, "handler", service="routing").get(f"/api/v1/routing/{case_id}")]
    assert answers[1][0] == 404 and answers[2][0] == 404
    time.sleep(2)  # let any late event settle on the 人社局 node before its files are searched
    fed.node(RSJ).stop()
    needles = [s.encode() for s in (name, id_number, phone)]
    data_files = [p for p in (fed.fed.root / RSJ).rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in data_files)
    log_files = list((fed.fed.root.parent / "logs").glob(f"{RSJ}-*.log"))
    assert log_files
    for p in data_files + log_files:  # SQLite databases with their -wal/-shm, and every log of the node
        raw = p.read_bytes()
        for needle in needles:
            assert needle not in raw, f"reporter identity found in {p}"
    for answer in answers:
        text = str(answer)
        assert name not in text and id_number not in text and phone not in text


def test_declined_referral_is_reclassified_and_a_clerk_overrides(start_federation, backend):
    fed = start_federation(nodes(XFJ, FY, SFJ), backend=backend, manual_sign={SFJ, FY}, env=NO_POLL)
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(
        81, "不服行政处罚", "区市场监管局对本人作出罚款五万元的行政处罚决定，本人不服，要求复议。", "涉法涉诉"))
    case_id = r["case_id"]
    sfj = legal(fed, SFJ, "handler")
    wait_for(lambda: (x := sfj.get(f"/api/v1/referrals/{case_id}"))[0] == 200 and x[1]["status"] == "pending",
             what="referral waiting at the 司法局")
    # (the referral reaches the 司法局 over gRPC before the bureau's read model has folded case.referred)
    until(fed, XFJ, case_id, lambda v: v["status"] == "referred" and v["holder"] == XFJ, "referred, held by the bureau")
    reason = "已超过六十日行政复议申请期限，不予受理；可依法提起行政诉讼"
    st, out = sfj.post(f"/api/v1/referrals/{case_id}/decline", {"reason": reason})
    assert st == 200 and out["status"] == "declined"
    assert sfj.post(f"/api/v1/referrals/{case_id}/accept")[0] == 409  # answered once
    # back at the referring node with its reason, classified again without that channel → the court
    v = until(fed, XFJ, case_id, lambda v: v["legal"]["status"] == "referred" and v["legal"]["attempt"] == 2,
              "re-classified after the decline")
    assert v["legal"]["declines"][0]["reason"] == reason and v["legal"]["declines"][0]["by"] == SFJ
    assert v["legal"]["referred_to"] == FY and v["legal"]["classification"]["rule"] == "administrative-litigation"
    st, lc = legal(fed, XFJ).get(f"/api/v1/legal/cases/{case_id}")
    assert lc["excluded_channels"] == ["administrative_reconsideration"] and len(lc["classifications"]) == 2
    fy = legal(fed, FY, "handler")
    wait_for(lambda: fy.get(f"/api/v1/referrals/{case_id}")[0] == 200, what="referral waiting at the court")

    # 人工改判: the clerk sends it to 法律援助 with a reason; both classifications stay on record
    st, err = legal(fed, XFJ).post(f"/api/v1/legal/cases/{case_id}/classification", {"channel": "weather", "reason": "xx"})
    assert st == 422 and err["error"]["field"] == "channel"
    assert legal(fed, XFJ, "auditor").post(f"/api/v1/legal/cases/{case_id}/classification",
                                           {"channel": "legal_aid", "reason": "xx"})[0] == 403
    why = "申请人经济困难，先申请法律援助再起诉"
    st, out = legal(fed, XFJ).post(f"/api/v1/legal/cases/{case_id}/classification", {"channel": "legal_aid", "reason": why})
    assert st == 200 and out["classification"]["override"] and out["attempt"] == 3
    wait_for(lambda: (x := fy.get(f"/api/v1/referrals/{case_id}"))[1]["status"] == "superseded", what="court superseded")
    assert fy.post(f"/api/v1/referrals/{case_id}/accept")[0] == 409
    wait_for(lambda: (x := sfj.get(f"/api/v1/referrals/{case_id}"))[1]["channel"] == "legal_aid" and
             x[1]["status"] == "pending", what="legal aid referral at the 司法局")
    st, acc = sfj.post(f"/api/v1/referrals/{case_id}/accept")
    assert st == 200 and re.fullmatch(r"\(20\d\d\)川0104法援\d+号", acc["receipt_no"])
    v = until(fed, XFJ, case_id, lambda v: v["status"] == "legal_accepted" and v["legal"]["notice"], "accepted")
    assert v["holder"] == SFJ and v["legal"]["receipt_no"] == acc["receipt_no"] and "法律援助" in v["legal"]["notice"]["text"]
    overrides = [c for c in v["legal"]["classifications"] if c["override"]]
    assert len(overrides) == 1 and overrides[0]["override_reason"] == why
    assert any("行政诉讼" in x or "administrative-litigation" in x for x in overrides[0]["reasons"])
    st, err = legal(fed, XFJ).post(f"/api/v1/legal/cases/{case_id}/classification",
                                   {"channel": "litigation_guidance", "reason": "再改"})
    assert st == 409  # accepted: no more overrides

    # declined where no other legal channel fits → back to the bureau for a manual decision (routed by hand)
    st, r2 = fed.client(XFJ).post("/api/v1/petitions", petition(82, "邻里纠纷", "邻居装修损坏我家墙面，拒不赔偿。", "涉法涉诉"))
    wait_for(lambda: fy.get(f"/api/v1/referrals/{r2['case_id']}")[0] == 200, what="second referral at the court")
    assert fy.post(f"/api/v1/referrals/{r2['case_id']}/decline", {"reason": "属人民调解范围，建议先行申请人民调解"})[0] == 200
    v = until(fed, XFJ, r2["case_id"], lambda v: v["status"] == "manual_review", "manual review at the bureau")
    assert v["holder"] == XFJ
    manual = next(e for e in v["events"] if e["type"] == "case.manual_review")["payload"]["reason"]
    assert "锦江区人民法院" in manual and "人工分办" in manual


def test_bad_channel_file_stops_start_up(tmp_path):
    bad = tmp_path / "channels.toml"
    bad.write_text('[[channel]]\nid = "a"\nlabel = "A"\nbodies = ["court"]\nreceipt_word = "诉"\nbring = []\n'
                   'time_limits = []\n\n[[rule]]\nid = "r"\nchannel = "nowhere"\nkeywords = ["x"]\nwhy = "x"\n',
                   encoding="utf-8")
    fed = federation.build(tmp_path / "fed", "nats://127.0.0.1:1", federation.DEMO_NODES[:1])
    cfg = fed.nodes[0].config_path
    text = cfg.read_text(encoding="utf-8")
    cfg.write_text(text.replace("\ndirectory = ", f'\nlegal_channels = "{bad}"\ndirectory = ', 1), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "services.legal_referral", "--config", str(cfg)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "line 9 (rule 'r'): unknown channel 'nowhere'" in proc.stderr
