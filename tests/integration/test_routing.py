"""Issue 3: routing across real nodes — rules, 交办 over gRPC, 签收/退回, 越级, 重信重访, 集体访, a target down."""
from __future__ import annotations

import subprocess
import sys

from shared import federation, wakeup
from shared.launcher import REPO
from tests.support import petition, valid_id, wait_for

XFJ, RSJ, MZJ, CITY, CITY_RSJ = "510104-xfj", "510104-rsj", "510104-mzj", "510100-xfj", "510100-rsj"
NODES = [("510104-xfj", "锦江区信访局", "petition_bureau", "510104"),
         ("510104-rsj", "锦江区人力资源和社会保障局", "hrss", "510104"),
         ("510104-mzj", "锦江区民政局", "civil_affairs", "510104"),
         ("510100-xfj", "成都市信访局", "petition_bureau", "510100")]


def view(fed, agency, case_id):
    st, body = fed.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
    return body if st == 200 else None


def held_by(fed, agency, case_id, holder):
    return (v := view(fed, agency, case_id)) is not None and v["holder"] == holder and v


def test_routing_across_the_federation(start_federation):
    fed = start_federation(NODES)
    # 劳动社保 at the county bureau → signed for by the county 人社局; every sharing node agrees
    st, labour = fed.client(XFJ).post("/api/v1/petitions", petition(1))
    assert st == 201
    for agency in (XFJ, RSJ, CITY):
        v = wait_for(lambda: held_by(fed, agency, labour["case_id"], RSJ), what=f"holder on {agency}")
        assert v["status"] == "in_handling" and v["routing"]["rule"] == "labour"
    assert view(fed, MZJ, labour["case_id"]) is None  # 民政局 does not share it

    # 社会救助 (低保), category left to classification → the county 民政局
    st, relief = fed.client(XFJ).post("/api/v1/petitions", petition(2, category=None, title="低保申请",
                                                                      content="申请低保被街道拒绝，生活困难。"))
    assert st == 201
    v = wait_for(lambda: held_by(fed, MZJ, relief["case_id"], MZJ), what="signed for by 民政局")
    assert v["category"] == "社会救助"

    # 越级: the city bureau receives a county matter → the county body, flagged, with the guidance notice
    st, up = fed.client(CITY).post("/api/v1/petitions", petition(3))
    v = wait_for(lambda: held_by(fed, CITY, up["case_id"], RSJ), what="county body signs a 越级 case")
    assert "skipped_level" in v["flags"]
    offered = next(e for e in v["events"] if e["type"] == "case.offered")  # the 分办决定 travels with the 交办
    assert offered["payload"]["routing"]["rule"] == v["routing"]["rule"]
    assert "逐级走访" in offered["payload"]["routing"]["notice"]

    # 重信重访: the same person and matter at another node → linked, no second case
    st, again = fed.client(CITY).post("/api/v1/petitions", petition(1, content=petition(1)["content"] + "至今未解决。"))
    assert st == 201 and again["status"] == "repeat_linked" and again["case_id"] == labour["case_id"]
    v = wait_for(lambda: (x := view(fed, RSJ, labour["case_id"])) and x["repeat_count"] == 1 and x,
                 what="repeat shown to the holder")
    assert "repeat" in v["flags"] and v["risk_level"] == "三级" and "重复信访 1 次" in v["risk_reasons"]
    st, q = fed.client(CITY).get(f"/api/v1/query/{again['query_code']}")
    assert st == 200 and q["case_id"] == labour["case_id"]
    # … a different matter of the same person is a new case
    st, other = fed.client(XFJ).post("/api/v1/petitions", petition(1, title="噪音", content="邻近工厂夜间噪音扰民。",
                                                                    category="生态环境"))
    assert other["case_id"] != labour["case_id"] and other["status"] == "registered"


def test_collective_visit_representatives(start_federation):
    fed = start_federation(NODES[:2])
    reps = [{"name": f"代表{i}", "id_number": valid_id(900 + i)} for i in range(6)]
    st, err = fed.client(XFJ).post("/api/v1/petitions", petition(10, persons=40, petitioner=None, representatives=reps))
    assert st == 422 and "representatives" in err["error"]["message"] and "5" in err["error"]["message"]
    st, ok = fed.client(XFJ).post("/api/v1/petitions", petition(10, persons=40, petitioner=None,
                                                              representatives=reps[:5]))
    assert st == 201
    v = view(fed, XFJ, ok["case_id"])
    assert v["collective"] and "collective" in v["flags"] and v["risk_level"] == "二级"
    assert any("集体访" in r for r in v["risk_reasons"])


# (These two run with the services' safety polls out of reach: offers, retries and re-routing move on
# wake-ups and on the dispatcher's sleep until the next retry is due.)
NO_POLL = {wakeup.IDLE_ENV: "600"}


def test_return_reroutes_and_too_many_returns_go_to_the_bureau(start_federation):
    nodes = NODES[:2] + [(CITY_RSJ, "成都市人力资源和社会保障局", "hrss", "510100"), NODES[3]]
    fed = start_federation(nodes, manual_sign={RSJ, CITY_RSJ}, env=NO_POLL)
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(20))
    case_id = r["case_id"]
    queue = fed.client(RSJ, "handler", service="routing")
    wait_for(lambda: any(o["case_id"] == case_id for o in queue.get("/api/v1/offers")[1]["offers"]),
             what="offer in the 人社局 queue")
    # 首问负责 until someone signs (the offer reaches the 人社局 once its event is on the bus, which the
    # bureau's own read model may fold a moment later)
    wait_for(lambda: (v := held_by(fed, XFJ, case_id, XFJ)) and v["status"] == "offered", what="offered, held by the desk")
    st, _ = queue.post(f"/api/v1/offers/{case_id}/return", {"reason": "系区属企业改制遗留问题，不属本局职责"})
    assert st == 200
    city_queue = fed.client(CITY_RSJ, "handler", service="routing")
    wait_for(lambda: any(o["case_id"] == case_id for o in city_queue.get("/api/v1/offers")[1]["offers"]),
             what="re-routed to the city 人社局")
    st, again = queue.post(f"/api/v1/offers/{case_id}/return", {"reason": "重复退回"})
    assert st == 409  # already answered: a replayed decision cannot fork the history
    st, _ = city_queue.post(f"/api/v1/offers/{case_id}/return", {"reason": "应由区县属地办理"})
    assert st == 200
    v = wait_for(lambda: (x := view(fed, XFJ, case_id)) and x["status"] == "manual_review" and x,
                 what="manual review at the bureau")
    assert v["holder"] == XFJ and v["returns"] == 2
    returned = [e["payload"]["reason"] for e in v["events"] if e["type"] == "case.returned"]
    assert returned == ["系区属企业改制遗留问题，不属本局职责", "应由区县属地办理"]
    st, decisions = fed.client(XFJ, "handler", service="routing").get(f"/api/v1/routing/{case_id}")
    assert [d["target"] for d in decisions["decisions"]] == [RSJ, CITY_RSJ, XFJ]


def test_target_down_during_offer(start_federation):
    fed = start_federation(NODES[:2], env=NO_POLL)
    fed.node(RSJ).stop()
    st, r = fed.client(XFJ).post("/api/v1/petitions", petition(30))
    case_id = r["case_id"]
    v = wait_for(lambda: (x := view(fed, XFJ, case_id)) and "offer_unanswered" in x["flags"] and x, timeout=30,
                 what="unanswered offer flagged for supervision")
    assert v["holder"] == XFJ and v["status"] == "offered"
    fed.node(RSJ).start().wait_ready()
    v = wait_for(lambda: held_by(fed, RSJ, case_id, RSJ), timeout=40, what="signed for once the target is back")
    types = [e["type"] for e in v["events"]]
    assert types.count("case.signed_for") == 1 and types.count("case.offered") == 1
    assert len({e["id"] for e in v["events"]}) == len(v["events"])


def test_bad_rule_file_stops_start_up(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nid = "x"\ncategory = "劳动社保"\nlead = "ministry"\nwhy = "x"\n', encoding="utf-8")
    fed = federation.build(tmp_path / "fed", "nats://127.0.0.1:1", federation.DEMO_NODES[:1], rules=rules)
    proc = subprocess.run([sys.executable, "-m", "services.routing", "--config", str(fed.nodes[0].config_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "line 1" in proc.stderr and "unknown agency type 'ministry'" in proc.stderr
