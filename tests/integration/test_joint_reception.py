"""Issue 7, 联合接访 across real nodes (JetStream, gRPC, one process per service): walk-in tickets through
intake to the right window, joint sessions with invitations over gRPC (accept / decline / node down),
commitments on every participant's case, hearings, the roster, leader reception days and their gaps."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from shared import clock, federation, ledger, wakeup
from shared.launcher import REPO, FederationProcesses, NatsServer
from tests.support import Http, petition, pg_database_url, valid_id, wait_for

XFJ, RSJ, MZJ, FY = "510104-xfj", "510104-rsj", "510104-mzj", "510104-fy"
NODES = [(XFJ, "锦江区信访局", "petition_bureau", "510104"),
         (RSJ, "锦江区人力资源和社会保障局", "hrss", "510104"),
         (MZJ, "锦江区民政局", "civil_affairs", "510104"),
         (FY, "锦江区人民法院", "court", "510104")]
TODAY = ledger.local_date(clock.now())
LEADER = "王建国"


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


CENTRE = f"""
[centre]
host = "{XFJ}"
name = "锦江区联合接访中心"
place = "联合接访大厅"

[topics]
"养老保险" = "劳动社保"
"工资拖欠" = "劳动社保"
"最低生活保障" = "社会救助"
"诉讼与执行" = "涉法涉诉"
"其他事项" = "其他"

[[window]]
id = "xfj"
agency = "{XFJ}"
name = "综合接待窗口"
prefix = "A"
topics = ["其他事项"]

[[window]]
id = "rsj"
agency = "{RSJ}"
name = "人社窗口"
prefix = "R"
categories = ["劳动社保"]

[[window]]
id = "mzj"
agency = "{MZJ}"
name = "民政窗口"
prefix = "M"
topics = ["最低生活保障"]

[[window]]
id = "fy"
agency = "{FY}"
name = "法院诉访窗口"
prefix = "F"
topics = ["诉讼与执行"]

[[sensitive_period]]
name = "测试敏感期"
from = {day(1)}
to = {day(2)}

[[duty]]
date = {day(1)}
people = ["周敏", "刘洋"]

[[leader_day]]
date = {day(0)}
leader = "{LEADER}"
title = "区委副书记"
topics = ["劳动社保", "社会救助"]

[[leader_day]]
date = {day(3)}
leader = ""
topics = ["涉法涉诉"]
"""


class Running:
    def __init__(self, fed: federation.Federation, procs: FederationProcesses):
        self.fed, self.procs = fed, procs

    def client(self, agency: str, role: str = "clerk", service: str = "intake") -> Http:
        n = self.fed.node(agency)
        return Http(n.url(service), n.tokens[role])

    def centre(self, role: str = "clerk") -> Http:
        return self.client(XFJ, role, "joint_reception")

    def node(self, agency: str):
        return self.procs.nodes[agency]


def host_centre(config_path, centre_path) -> None:
    """Point the bureau's node config at the test's centre file (joint_reception_centre)."""
    lines = config_path.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("directory = "))
    lines.insert(at + 1, f"joint_reception_centre = {json.dumps(str(centre_path), ensure_ascii=False)}")
    config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fed(tmp_path_factory, request):
    """One federation per backend for the module: 信访局 hosting the centre, 人社局, 民政局 and 法院
    (法院 answers invitations by hand: auto_sign_for off). Its services' safety polls are out of reach
    (10 minutes), so tickets, invitations, offers and events move on wake-ups alone."""
    root = tmp_path_factory.mktemp(f"joint-{request.param}")
    db = pg_database_url(request.getfixturevalue("pg"), f"jr_{root.name[-8:]}".replace("-", "_").lower()) \
        if request.param == "postgresql" else None
    nats = NatsServer(root).start()
    spec = federation.build(root / "fed", nats.url, NODES, database_url=db, auto_sign_for=True, manual_sign={FY})
    (root / "centre.toml").write_text(CENTRE, encoding="utf-8")
    host_centre(spec.node(XFJ).config_path, root / "centre.toml")
    nats.secure(spec)
    procs = FederationProcesses(spec, root / "logs", env={wakeup.IDLE_ENV: "600"})
    try:
        for node in procs.nodes.values():
            node.start()
        for node in procs.nodes.values():  # 4 nodes × every service: give a loaded machine time to start them
            node.wait_ready(timeout=240)
        yield Running(spec, procs)
    finally:
        procs.stop()
        nats.stop()


def case_view(fed: Running, agency: str, case_id: str) -> dict | None:
    st, body = fed.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
    return body if st == 200 else None


def session_view(fed: Running, session_id: str) -> dict:
    st, body = fed.centre().get(f"/api/v1/centre/sessions/{session_id}")
    assert st == 200, body
    return body


def answers(sess: dict) -> dict:
    return {i["agency"]: (i["answer"], i["reason"]) for i in sess["invitations"]}


def register(fed: Running, n: int, **over) -> dict:
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(n, **over))
    assert st == 201, r
    return r


def open_session(fed: Running, case_id: str, agencies: list[str], agenda: str) -> dict:
    """Opens once the centre has seen the case on the ledger (404 until then)."""
    def attempt():
        st, body = fed.centre().post("/api/v1/centre/sessions", {"case_id": case_id, "agencies": agencies,
                                                                 "agenda": agenda})
        assert st in (201, 404), body
        return body if st == 201 else None
    return wait_for(attempt, timeout=30, what="session opened")


def test_walk_in_ticket_is_served_at_the_hrss_window_as_one_case(fed):
    visit = {"topic": "养老保险", "petition": {
        "title": "养老保险待遇未按时发放", "content": "本人退休后养老保险待遇连续三个月未发放，社保经办机构称缴费记录缺失。",
        "petitioner": {"name": "王秀英", "id_number": valid_id(701)}}}
    st, r = fed.centre().post("/api/v1/centre/tickets", visit, headers={"Idempotency-Key": "walk-in-701"})
    assert st == 201, r
    ticket, case_id = r["ticket"], r["case_id"]
    assert (ticket["window_id"], ticket["window_agency"], ticket["status"]) == ("rsj", RSJ, "waiting")
    assert ticket["number"].startswith("R") and ticket["category"] == "劳动社保" and r["query_code"]
    # the desk retries the same request: the same ticket and the same case, not a second one
    st, again = fed.centre().post("/api/v1/centre/tickets", visit, headers={"Idempotency-Key": "walk-in-701"})
    assert st == 201 and again["ticket"]["ticket_id"] == ticket["ticket_id"] and again["case_id"] == case_id

    # the hall's screen: the queue with waiting times
    st, q = fed.centre().get("/api/v1/centre/queue")
    rsj = next(w for w in q["windows"] if w["window_id"] == "rsj")
    waiting = next(t for t in rsj["waiting"] if t["ticket_id"] == ticket["ticket_id"])
    assert waiting["waited_minutes"] >= 0 and waiting["ahead"] == 0 and rsj["agency_name"] == "锦江区人力资源和社会保障局"

    # the 人社局 node sees its window's queue (gRPC from the centre) and serves the visitor from there
    window = fed.client(RSJ, "clerk", "joint_reception")
    st, mine = window.get("/api/v1/window")
    assert st == 200 and [c["centre"] for c in mine["centres"]] == [XFJ], mine
    queued = [t["ticket_id"] for w in mine["centres"][0]["windows"] for t in w["waiting"]]
    assert ticket["ticket_id"] in queued
    st, err = fed.client(MZJ, "clerk", "joint_reception").post(
        f"/api/v1/window/centres/{XFJ}/tickets/{ticket['ticket_id']}/serve")
    assert st == 403, err  # not the 民政局's window
    st, served = window.post(f"/api/v1/window/centres/{XFJ}/tickets/{ticket['ticket_id']}/serve")
    assert st == 200 and served["status"] == "served", served
    st, err = window.post(f"/api/v1/window/centres/{XFJ}/tickets/{ticket['ticket_id']}/serve")
    assert st == 409

    # one case, signed for by the county 人社局, with the reception on its history, on both nodes
    def served_case(agency):
        v = case_view(fed, agency, case_id)
        types = [e["type"] for e in v["events"]] if v else []
        return v if v and v["holder"] == RSJ and "case.reception_served" in types else None
    for agency in (XFJ, RSJ):
        v = wait_for(lambda: served_case(agency), timeout=60, what=f"served walk-in case on {agency}")
        types = [e["type"] for e in v["events"]]
        assert types.count("case.registered") == 1 and types.count("case.signed_for") == 1
        assert types.count("case.reception_ticketed") == 1 and types.count("case.reception_served") == 1
        assert v["status"] == "in_handling" and v["channel"] == "visit" and v["category"] == "劳动社保"
        assert v["reception"]["window_agency"] == RSJ and v["reception"]["number"] == ticket["number"]
        assert v["reception"]["served_at"]


def test_collective_visit_enters_through_at_most_five_representatives(fed):
    reps = [{"name": f"代表{i}", "id_number": valid_id(720 + i)} for i in range(6)]
    visit = {"topic": "工资拖欠", "petition": {"title": "集体讨薪", "content": "某建筑公司拖欠四十名工人工资半年。",
                                              "persons": 40, "representatives": reps}}
    st, err = fed.centre().post("/api/v1/centre/tickets", visit)
    assert st == 422 and "representatives" in err["error"]["message"] and "5" in err["error"]["message"], err
    visit["petition"]["representatives"] = reps[:5]
    st, r = fed.centre().post("/api/v1/centre/tickets", visit)
    assert st == 201, r
    assert r["ticket"]["collective"] and r["ticket"]["persons"] == 40 and r["ticket"]["window_id"] == "rsj"
    v = wait_for(lambda: case_view(fed, XFJ, r["case_id"]), what="collective case registered")
    assert v["collective"] and v["persons"] == 40


def test_joint_session_answers_and_commitments_on_every_participant(fed):
    reg = register(fed, 801, title="工伤待遇与生活救助",
                   content="工伤认定后单位拒付工伤待遇，家庭生活困难申请临时救助，另已就赔偿向法院起诉。")
    case_id = reg["case_id"]
    sess = open_session(fed, case_id, [RSJ, MZJ, FY], "工伤待遇支付与临时救助衔接，诉讼期间的生活保障")
    sid = sess["session_id"]
    assert sess["status"] == "inviting" and {i["agency"] for i in sess["invitations"]} == {RSJ, MZJ, FY}

    # 法院 answers by hand (its auto_sign_for is off): it declines, with its reason
    court = fed.client(FY, "clerk", "joint_reception")
    wait_for(lambda: any(i["session_id"] == sid for i in court.get("/api/v1/invitations?status=pending")[1]["invitations"]),
             timeout=30, what="invitation at the court")
    st, err = court.post(f"/api/v1/invitations/{sid}/decline", {"reason": ""})
    assert st == 422  # a reason is required
    reason = "赔偿纠纷已进入诉讼程序，由本院依法审理，不参加行政调处"
    st, declined = court.post(f"/api/v1/invitations/{sid}/decline", {"reason": reason})
    assert st == 200 and declined["status"] == "declined"
    assert court.post(f"/api/v1/invitations/{sid}/accept")[0] == 409

    s = wait_for(lambda: (x := session_view(fed, sid))["status"] == "ready" and x, timeout=30, what="all answered")
    assert answers(s) == {RSJ: ("accepted", None), MZJ: ("accepted", None), FY: ("declined", reason)}

    outcome = {"summary": "人社局督促用人单位支付工伤待遇；民政局先行办理临时救助；信访局跟踪回访。",
               "commitments": [{"agency": RSJ, "action": "督促用人单位支付工伤待遇，逾期依法移送", "due": day(15)},
                               {"agency": MZJ, "action": "办理临时救助并告知结果", "due": day(7)},
                               {"agency": XFJ, "action": "跟踪回访并报告办理情况", "due": day(30)}],
               "notice": {"items": ["居民身份证原件及复印件", "工伤认定决定书", "医疗费用票据", "家庭收入情况说明"],
                          "note": "请于7日内一次性提交，材料齐全后即时受理"}}
    bad = {**outcome, "commitments": [{"agency": FY, "action": "依法审理", "due": day(30)}]}
    st, err = fed.centre().post(f"/api/v1/centre/sessions/{sid}/outcome", bad)
    assert st == 422 and "已拒绝" in err["error"]["message"], err  # a body that declined commits to nothing
    st, done = fed.centre().post(f"/api/v1/centre/sessions/{sid}/outcome", outcome)
    assert st == 200 and done["status"] == "concluded", done
    assert fed.centre().post(f"/api/v1/centre/sessions/{sid}/outcome", outcome)[0] == 409

    # the agreed commitments, each with its own deadline, on the case at every node invited (and the centre)
    def committed(agency):
        v = case_view(fed, agency, case_id)
        return v if v and len(v["commitments"]) == 3 and v["notice"] else None
    for agency in (RSJ, MZJ, FY, XFJ):
        v = wait_for(lambda: committed(agency), timeout=60, what=f"commitments on {agency}")
        by_agency = {c["agency"]: c for c in v["commitments"]}
        assert set(by_agency) == {RSJ, MZJ, XFJ}
        assert by_agency[MZJ]["due_date"] == day(7) and by_agency[RSJ]["due_date"] == day(15)
        assert all(c["state"] == "running" and c["days_left"] >= 0 for c in v["commitments"])
        assert [e["type"] for e in v["events"]].count("case.commitment_made") == 3
        made = [e["payload"] for e in v["events"] if e["type"] == "case.commitment_made"]
        assert all(p["due"] and p["agency"] and p["action"] for p in made)
        assert v["notice"]["items"][1] == "工伤认定决定书"
        js = next(x for x in v["joint_sessions"] if x["session_id"] == sid)
        assert js["status"] == "concluded"
        assert {a["agency"]: (a["answer"], a["reason"]) for a in js["answers"]}[FY] == ("declined", reason)
    # the petitioner's own view shows the one-time notice, not the agencies' internal answers
    st, q = fed.client(XFJ).get(f"/api/v1/query/{reg['query_code']}")
    assert st == 200 and q["notice"]["items"][0] == "居民身份证原件及复印件"
    assert "联合调处答复" not in [p["step"] for p in q["progress"]]
    # the session is on the screen of the day
    st, today = fed.centre().get("/api/v1/centre/sessions")
    assert any(x["session_id"] == sid for x in today["sessions"])


def test_invited_node_down_gets_the_invitation_after_restart(fed):
    case_id = register(fed, 802, title="低保停发", content="家中低保被停发，申请恢复最低生活保障待遇。",
                       category="社会救助")["case_id"]
    fed.node(MZJ).stop()
    try:
        sid = open_session(fed, case_id, [MZJ, RSJ], "低保恢复与就业援助")["session_id"]
        s = wait_for(lambda: (x := session_view(fed, sid)) and answers(x)[RSJ][0] == "accepted" and
                     any(i["agency"] == MZJ and i["tries"] >= 2 for i in x["invitations"]) and x,
                     timeout=60, what="invitation to the stopped node retried")
        mzj = next(i for i in s["invitations"] if i["agency"] == MZJ)
        assert not mzj["delivered"] and mzj["answer"] == "pending" and mzj["last_error"]
    finally:
        fed.node(MZJ).start().wait_ready(timeout=240)
    s = wait_for(lambda: (x := session_view(fed, sid)) and answers(x)[MZJ][0] == "accepted" and x, timeout=90,
                 what="the restarted node answers the invitation")
    assert s["status"] == "ready"
    st, inv = fed.client(MZJ, "clerk", "joint_reception").get("/api/v1/invitations")
    assert [i["status"] for i in inv["invitations"] if i["session_id"] == sid] == ["accepted"]  # once, not lost

    def answered_on_mzj():
        v = case_view(fed, MZJ, case_id)
        return v and [e for e in v["events"] if e["type"] == "case.joint_invitation_answered" and e["agency"] == MZJ]
    assert len(wait_for(answered_on_mzj, timeout=60, what="the answer on the restarted node's case")) == 1


def test_hearing_attendance_and_conclusion_on_the_case(fed):
    case_id = register(fed, 803, title="养老金核定争议", content="对养老金核定基数有异议，申请听证。")["case_id"]
    participants = [{"role": "chair", "name": "陈志刚"}, {"role": "panel", "name": "人大代表李明"},
                    {"role": "petitioner", "name": "不应上链的姓名"}, {"role": "agency", "agency": RSJ}]

    def schedule():
        st, body = fed.centre().post("/api/v1/centre/hearings", {
            "case_id": case_id, "subject": "养老金核定基数", "scheduled_at": f"{day(0)}T15:00:00+08:00",
            "participants": participants})
        assert st in (201, 404), body
        return body if st == 201 else None
    h = wait_for(schedule, timeout=30, what="hearing scheduled")
    assert [p["id"] for p in h["participants"]] == ["p1", "p2", "p3", "p4"]
    assert h["participants"][2]["name"] is None  # the petitioner is listed by role only
    st, err = fed.centre().post(f"/api/v1/centre/hearings/{h['hearing_id']}/record",
                                {"attended": ["p2", "p3"], "conclusion": "x" * 3})
    assert st == 422 and "主持人" in err["error"]["message"]
    conclusion = "经听证，原核定基数计算有误，由人社局重新核定并书面答复。"
    st, held = fed.centre().post(f"/api/v1/centre/hearings/{h['hearing_id']}/record",
                                 {"attended": ["p1", "p2", "p3", "p4"], "conclusion": conclusion})
    assert st == 200 and held["status"] == "held"
    st, today = fed.centre().get("/api/v1/centre/hearings")
    assert any(x["hearing_id"] == h["hearing_id"] for x in today["hearings"])
    for agency in (XFJ, RSJ):
        v = wait_for(lambda: (x := case_view(fed, agency, case_id)) and x["hearings"] and
                     x["hearings"][0]["status"] == "held" and x, timeout=60, what=f"hearing on {agency}")
        assert v["hearings"][0]["conclusion"] == conclusion
        assert all(a["present"] for a in v["hearings"][0]["attendance"])
        assert "不应上链的姓名" not in json.dumps(v, ensure_ascii=False)


def test_roster_refuses_a_sensitive_day_with_fewer_than_two_on_duty(fed):
    supervisor = fed.centre("supervisor")
    st, err = supervisor.call("PUT", f"/api/v1/centre/roster/{day(2)}", {"people": ["张三"]})
    assert st == 422 and err["error"]["field"] == "people", err
    assert "敏感日（测试敏感期）" in err["error"]["message"] and "双人值班" in err["error"]["message"]
    assert fed.centre("clerk").call("PUT", f"/api/v1/centre/roster/{day(2)}", {"people": ["张三", "李四"]})[0] == 403
    st, ok = supervisor.call("PUT", f"/api/v1/centre/roster/{day(2)}", {"people": ["张三", "李四"], "lead": "黄海"})
    assert st == 200 and ok["ok"] and ok["sensitive"]
    st, ok = supervisor.call("PUT", f"/api/v1/centre/roster/{day(5)}", {"people": ["张三"]})
    assert st == 200  # an ordinary day: one person is enough
    st, r = fed.centre().get(f"/api/v1/centre/roster?from={day(0)}&to={day(5)}")
    roster = {x["date"]: x for x in r["roster"]}
    assert roster[day(1)]["people"] == ["周敏", "刘洋"] and roster[day(2)]["people"] == ["张三", "李四"]
    assert roster[day(1)]["two_person_required"] and roster[day(5)]["people"] == ["张三"]


def test_leader_day_without_leader_is_a_gap_and_the_leader_takes_a_case(fed):
    st, g = fed.centre().get("/api/v1/centre/gaps")
    assert st == 200
    gap = next(x for x in g["gaps"] if x["kind"] == "leader_day_unassigned")
    assert gap["date"] == day(3) and "尚未安排接访领导" in gap["message"]
    assert not [x for x in g["gaps"] if x["kind"] == "sensitive_day_without_duty" and x["date"] == day(1)]
    st, screen = fed.centre().get("/api/v1/centre/screen")
    assert st == 200 and {"queue", "sessions", "hearings", "roster", "leader_days", "gaps"} <= screen.keys()
    assert screen["leader_days"][0]["leader"] == LEADER

    # 领导包案 on the reception day, by the receiving leader only
    case_id = register(fed, 804, title="企业改制职工安置", content="企业改制后职工安置补偿长期未落实。",
                       category="企业改制")["case_id"]
    path = f"/api/v1/centre/leader-days/{day(0)}/cases"
    assert fed.centre("clerk").post(path, {"case_id": case_id})[0] == 403
    assert fed.centre("leader").post(f"/api/v1/centre/leader-days/{day(3)}/cases", {"case_id": case_id})[0] == 409
    taken = wait_for(lambda: (r := fed.centre("leader").post(path, {"case_id": case_id}))[0] == 201 and r[1],
                     timeout=30, what="leader takes the case")
    assert taken["leader"] == LEADER
    assert fed.centre("leader").post(path, {"case_id": case_id})[0] == 409
    v = wait_for(lambda: (x := case_view(fed, XFJ, case_id)) and x.get("leader") and x, timeout=30,
                 what="leader on the case")
    assert v["leader"]["name"] == LEADER
    assigned = next(e for e in v["events"] if e["type"] == "case.leader_assigned")
    assert assigned["payload"]["leader"] == LEADER and assigned["payload"]["by"] == "demo-leader"

    # the gap closes once a leader is assigned to the day
    st, _ = fed.centre("admin").call("PUT", f"/api/v1/centre/leader-days/{day(3)}", {"leader": "李卫东", "title": "副区长"})
    assert st == 200
    st, g = fed.centre().get("/api/v1/centre/gaps")
    assert not [x for x in g["gaps"] if x["kind"] == "leader_day_unassigned"]


def test_only_the_bureau_hosts_the_centre(fed):
    st, err = fed.client(RSJ, "clerk", "joint_reception").get("/api/v1/centre/queue")
    assert st == 404 and "未设联合接访中心" in err["error"]["message"]
    st, info = fed.centre().get("/api/v1/centre")
    assert st == 200 and info["host"] == XFJ and len(info["windows"]) == 4


def test_bad_centre_file_stops_start_up(tmp_path):
    bad = CENTRE.replace('people = ["周敏", "刘洋"]', 'people = ["周敏"]')
    (tmp_path / "centre.toml").write_text(bad, encoding="utf-8")
    spec = federation.build(tmp_path / "fed", "nats://127.0.0.1:1", NODES[:1])
    host_centre(spec.nodes[0].config_path, tmp_path / "centre.toml")
    proc = subprocess.run([sys.executable, "-m", "services.joint_reception", "--config", str(spec.nodes[0].config_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "[[duty]]" in proc.stderr and "敏感日（测试敏感期）" in proc.stderr and "双人值班" in proc.stderr, proc.stderr
