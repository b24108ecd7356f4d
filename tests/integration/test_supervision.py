"""Issue 5: statutory clocks, handling commands, 督查督办, 领导包案 and 考核 across real node processes,
a real nats-server and the injectable clock (LIANFANG_CLOCK_FILE): the tests move time forward, every
service process reads the same clock file.

One federation serves the whole module (starting one costs seconds). Each test works on its own
cases in its own period (a different year), and time only ever moves forward."""
from __future__ import annotations

import csv
import io
import sqlite3
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

import pytest

from shared import clock, federation, ledger
from shared.launcher import FederationProcesses, NatsServer, NodeProcesses
from tests.support import Http, petition, wait_for

BUREAU, HRSS, CITY, CITY_HRSS = "510104-xfj", "510104-rsj", "510100-xfj", "510100-rsj"
NODES = [(BUREAU, "锦江区信访局", "petition_bureau", "510104"),
         (HRSS, "锦江区人力资源和社会保障局", "hrss", "510104"),
         (CITY, "成都市信访局", "petition_bureau", "510100"),
         (CITY_HRSS, "成都市人力资源和社会保障局", "hrss", "510100")]
REPLY_TEXT = "经调查核实，该公司确有拖欠工资情形，我局已责令其于十五日内足额支付。如不服本意见，可自收到之日起30日内申请复查。"


class Federation:
    def __init__(self, root, fed, procs, nats, clock_file, env):
        self.root, self.fed, self.procs, self.nats, self.clock_file, self.env = root, fed, procs, nats, clock_file, env

    def client(self, agency: str, role: str = "clerk", service: str = "intake") -> Http:
        n = self.fed.node(agency)
        return Http(n.url(service), n.tokens[role])

    def restart_supervision(self, agency: str, wipe: bool = False) -> None:
        """Kill the node's supervision process (SIGKILL, mid-run); optionally lose its database; start it again."""
        node = self.procs.nodes[agency]
        proc = node.procs["supervision"]
        proc.kill()
        proc.wait()
        if wipe:
            for f in (self.root / "fed" / agency).glob("supervision.db*"):
                f.unlink()
        fresh = NodeProcesses(node.spec, self.root / "logs", services=("supervision",), env=self.env).start()
        fresh.wait_ready()
        node.procs["supervision"] = fresh.procs["supervision"]  # stopped with the rest at teardown


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    root = tmp_path_factory.mktemp("supervision")
    nats = NatsServer(root).start()
    clock_file = root / "clock.json"
    clock.set_offset(timedelta(0), clock_file)
    spec = federation.build(root / "fed", nats.url, NODES, auto_sign_for=True)
    nats.secure(spec)  # TLS and one NATS user per node from here on (restarts the server)
    env = {"LIANFANG_CLOCK_FILE": str(clock_file), "LIANFANG_REMIND_DAYS": "3",
           "LIANFANG_SUPERVISION_INTERVAL_S": "0.3"}
    procs = FederationProcesses(spec, root / "logs", env=env).start()
    yield Federation(root, spec, procs, nats, clock_file, env)
    procs.stop()
    nats.stop()


class Timeline:
    """Day n of a test's own period, at 10:00 Beijing time (far from any midnight)."""

    def __init__(self, fed: Federation, year: int):
        self.fed, self.base = fed, datetime(year, 1, 5, 10, 0, tzinfo=ledger.CST)

    def at(self, n: int) -> None:
        clock.travel_to(self.base + timedelta(days=n), self.fed.clock_file)

    def date(self, n: int) -> str:
        return (self.base + timedelta(days=n)).date().isoformat()


def sv(fed, agency: str, role: str = "handler") -> Http:
    """A client of the node's supervision service."""
    return fed.client(agency, role, "supervision")


def sv_case(fed, agency, case_id):
    st, body = sv(fed, agency).get(f"/api/v1/supervision/cases/{case_id}")
    return body if st == 200 else None


def new_case(fed, n, at=BUREAU, **over) -> tuple[str, str]:
    """Register a petition, wait until the 人社局 has signed for it and its supervision knows it."""
    st, r = fed.client(at).post("/api/v1/petitions", petition(n, **over))
    assert st == 201, r
    for agency in (HRSS, BUREAU):  # the holder, and the bureau that supervises it, know who holds it
        wait_for(lambda: (v := sv_case(fed, agency, r["case_id"])) and v["status"] == "in_handling",
                 what=f"{r['case_id']} signed for by the 人社局, seen on {agency}")
    return r["case_id"], r["query_code"]


def clock_of(view, name):
    return next(c for c in view["clocks"] if c["name"] == name)


def do(fed, agency, case_id, action, body=None, role="handler", expect=200):
    """A command on a node's supervision service. Before the test moves time on, the supervising bureau
    must have seen its event (in real time an act is seconds from the deadline, not days)."""
    st, r = sv(fed, agency, role).post(f"/api/v1/supervision/cases/{case_id}/{action}", body or {})
    assert st == expect, (action, st, r)
    if st == 200:
        wait_for(lambda: (v := sv_case(fed, BUREAU, case_id)) and v["version"] >= r["version"],
                 what=f"{action} seen by the supervising bureau")
    return r


def intake_view(fed, agency, case_id):
    st, body = fed.client(agency, "handler").get(f"/api/v1/cases/{case_id}")
    return body if st == 200 else None


def orders(fed, agency, case_id, scope="mine"):
    st, r = sv(fed, agency).get(f"/api/v1/supervision/orders?scope={scope}")
    assert st == 200, r
    return [o for o in r["orders"] if o["case_id"] == case_id]


def test_acceptance_on_day_14_is_on_time_on_day_16_breached(fed):
    tl = Timeline(fed, 2030)
    tl.at(0)
    on_time, _ = new_case(fed, 601)
    late, _ = new_case(fed, 602)
    tl.at(14)
    view = do(fed, HRSS, on_time, "accept")
    c = clock_of(view, "acceptance_notice")
    assert c["state"] == "met" and c["due_date"] == tl.date(15) and view["status"] == "accepted"
    assert clock_of(view, "handling")["due_date"] == tl.date(74)
    tl.at(16)
    view = do(fed, HRSS, late, "accept")
    c = clock_of(view, "acceptance_notice")
    assert c["state"] == "breached" and c["days_late"] == 1 and c["state_label"] == "已超期"
    do(fed, HRSS, late, "accept", expect=409)  # once only
    # every node that shares the case shows the same clocks (intake's case view, the city bureau)
    v = wait_for(lambda: (v := intake_view(fed, CITY, late)) and v["status"] == "accepted" and v,
                 what="accepted on the city bureau")
    assert v["deadlines"][0]["name"] == "acceptance_notice" and v["deadlines"][0]["state"] == "breached"
    assert v["status_label"] == "已受理办理中" and "受理" in [e["label"] for e in v["events"]]
    # the late acceptance leaves a 责任追究 record (body, deadline, days late), issued by one node only
    rec = wait_for(lambda: [r for r in sv(fed, CITY).get("/api/v1/supervision/accountability")[1]["records"]
                            if r["case_id"] == late], what="accountability record")
    assert len(rec) == 1 and rec[0]["body"] == HRSS and rec[0]["due_date"] == tl.date(15)
    assert rec[0]["days_late"] >= 1 and rec[0]["supervisor"] == BUREAU
    assert not [r for r in sv(fed, CITY).get("/api/v1/supervision/accountability")[1]["records"]
                if r["case_id"] == on_time]


def test_extension_once_reply_and_review_window(fed):
    tl = Timeline(fed, 2031)
    tl.at(0)
    case_id, code = new_case(fed, 611)
    tl.at(1)
    do(fed, HRSS, case_id, "accept")
    tl.at(30)
    do(fed, HRSS, case_id, "extend", {"days": 20, "approver": "王局长", "reason": "需调查"}, role="clerk", expect=403)
    err = do(fed, HRSS, case_id, "extend", {"days": 31, "approver": "王局长", "reason": "需调查"}, expect=422)
    assert "1至30日" in err["error"]["message"] and err["error"]["field"] == "days"
    view = do(fed, HRSS, case_id, "extend", {"days": 30, "approver": "王局长", "reason": "涉及多部门，需调查核实"})
    c = clock_of(view, "handling")
    assert c["state"] == "extended" and c["due_date"] == tl.date(91) and c["extended_days"] == 30
    assert view["extension"]["approver"] == "王局长"
    err = do(fed, HRSS, case_id, "extend", {"days": 5, "approver": "王局长", "reason": "再延"}, expect=409)
    assert "只能延期一次" in err["error"]["message"]
    tl.at(40)
    do(fed, BUREAU, case_id, "reply", {"text": REPLY_TEXT}, expect=403)  # only the holder replies
    view = do(fed, HRSS, case_id, "reply", {"text": REPLY_TEXT})
    assert clock_of(view, "handling")["state"] == "met" and view["status"] == "replied"
    assert clock_of(view, "review_request")["due_date"] == tl.date(70)
    doc = sv(fed, HRSS).get(f"/api/v1/supervision/documents/{view['documents'][0]['id']}")[1]
    assert doc["text"] == REPLY_TEXT and doc["title"] == "信访处理意见书"
    # the petitioner sees the reply by 查询码 (and no internal supervision records)
    q = wait_for(lambda: (q := fed.client(BUREAU).get(f"/api/v1/query/{code}")[1]) and q.get("reply") and q,
                 what="reply in the query view")
    assert q["reply"]["text"] == REPLY_TEXT and q["status_label"] == "已答复"
    assert {p["step"] for p in q["progress"]} >= {"登记", "受理", "延期", "答复（信访处理意见书）"}
    assert not {"督办", "催办", "责任追究", "分办决定"} & {p["step"] for p in q["progress"]}
    tl.at(71)  # day 31 after the reply
    err = do(fed, HRSS, case_id, "review-request", {"reason": "不服处理意见"}, role="clerk", expect=422)
    assert "已超过复查申请期限" in err["error"]["message"] and "30日内" in err["error"]["message"]
    view = sv_case(fed, HRSS, case_id)
    assert clock_of(view, "review_request")["state"] == "expired" and view["status"] == "replied"


def test_breach_opens_order_on_the_holder_and_second_breach_escalates(fed):
    tl = Timeline(fed, 2032)
    tl.at(0)
    case_id, _ = new_case(fed, 621)
    tl.at(12)  # 3 days before the 受理告知 deadline: 催办
    rem = wait_for(lambda: [r for r in sv(fed, HRSS).get("/api/v1/supervision/reminders")[1]["reminders"]
                            if r["case_id"] == case_id], what="reminder")
    assert rem[0]["days_before"] == 3 and rem[0]["clock"] == "acceptance_notice" and "催办" in rem[0]["note"]
    tl.at(16)  # breached: a 督办 order addressed to the holder, on the holder's node
    first = wait_for(lambda: orders(fed, HRSS, case_id), what="督办 order on the holder's node")
    assert len(first) == 1
    o = first[0]
    assert o["level"] == "督办" and o["addressed_to"] == HRSS and o["supervisor"] == BUREAU
    assert o["status"] == "open" and o["due_date"] == tl.date(15) and o["clock"] == "acceptance_notice"
    view = wait_for(lambda: (v := intake_view(fed, HRSS, case_id)) and
                    any(e["type"] == ledger.SUPERVISION_ORDER for e in v["events"]) and v, what="order on the case")
    assert [e["agency"] for e in view["events"] if e["type"] == ledger.SUPERVISION_ORDER] == [BUREAU]
    do(fed, HRSS, case_id, "accept")  # late
    assert wait_for(lambda: orders(fed, HRSS, case_id)[0]["status"] == "closed", what="order closed")
    tl.at(16 + 61)  # the handling clock breaches too: second breach → 挂牌督办 at the next level
    both = wait_for(lambda: len(o := orders(fed, HRSS, case_id)) == 2 and o, what="挂牌督办")
    listed = next(o for o in both if o["clock"] == "handling")
    assert listed["level"] == "挂牌督办" and listed["supervisor"] == CITY and listed["addressed_to"] == HRSS
    assert "挂牌督办" in listed["note"]
    assert [o["level"] for o in wait_for(lambda: orders(fed, CITY, case_id, scope="issued"), what="city's list")] \
        == ["挂牌督办"]
    records = sv(fed, BUREAU).get("/api/v1/supervision/accountability")[1]["records"]
    assert sorted(r["breach_no"] for r in records if r["case_id"] == case_id) == [1, 2]
    v = wait_for(lambda: (v := intake_view(fed, CITY, case_id)) and "listed_supervision" in v["flags"] and v,
                 what="flag on the city bureau")
    assert sum(e["type"] == ledger.SUPERVISION_ORDER for e in v["events"]) == 2


def test_supervision_restarted_mid_run_rebuilds_the_same_clocks_and_orders(fed):
    tl = Timeline(fed, 2033)
    tl.at(0)
    case_id, _ = new_case(fed, 631)
    tl.at(16)
    wait_for(lambda: orders(fed, HRSS, case_id), what="督办 order")
    before = wait_for(lambda: sv_case(fed, BUREAU, case_id), what="bureau view")
    # the supervising node dies mid-run and loses its database: it rebuilds everything from the ledger
    fed.restart_supervision(BUREAU, wipe=True)
    after = wait_for(lambda: (v := sv_case(fed, BUREAU, case_id)) and len(v["orders"]) == 1 and
                     len(v["accountability"]) == 1 and v, timeout=30, what="rebuilt supervision view")
    for key in ("status", "holder", "supervisor"):
        assert after[key] == before[key]
    assert [(c["name"], c["state"], c["due_date"]) for c in after["clocks"]] == \
           [(c["name"], c["state"], c["due_date"]) for c in before["clocks"]]
    assert [o["id"] for o in after["orders"]] == [o["id"] for o in before["orders"]]
    assert [r["id"] for r in after["reminders"]] == [r["id"] for r in before["reminders"]]
    # the holder's supervision dies too (its database kept): it picks up where it stopped
    fed.restart_supervision(HRSS)
    time.sleep(2)  # several checker periods: nothing may be issued twice
    with sqlite3.connect(fed.root / "fed" / BUREAU / "supervision.db") as db:  # the rebuilt checker did not
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # even try to issue again
    assert len(orders(fed, HRSS, case_id)) == 1
    view = intake_view(fed, HRSS, case_id)
    assert sum(e["type"] == ledger.SUPERVISION_ORDER for e in view["events"]) == 1
    assert sum(e["type"] == ledger.ACCOUNTABILITY for e in view["events"]) == 1
    # and the rebuilt checker carries on: the second breach is escalated exactly once
    do(fed, HRSS, case_id, "accept")
    tl.at(16 + 61)
    both = wait_for(lambda: len(o := orders(fed, HRSS, case_id)) == 2 and o, what="挂牌督办 after restart")
    assert sorted(o["level"] for o in both) == ["挂牌督办", "督办"]
    time.sleep(1.5)
    view = intake_view(fed, CITY, case_id)
    assert sum(e["type"] == ledger.SUPERVISION_ORDER for e in view["events"]) == 2
    assert len({e["id"] for e in view["events"]}) == len(view["events"])


def test_dissatisfied_review_by_higher_body_then_re_review_terminates(fed):
    tl = Timeline(fed, 2034)
    tl.at(0)
    case_id, code = new_case(fed, 641)
    tl.at(1)
    do(fed, HRSS, case_id, "accept")
    tl.at(10)
    do(fed, HRSS, case_id, "reply", {"text": REPLY_TEXT})
    view = do(fed, HRSS, case_id, "satisfaction", {"rating": "不满意", "source": "follow_up"}, role="clerk")
    assert view["satisfaction"] == "不满意" and view["ratings"][0]["stage"] == "reply"
    tl.at(20)
    view = do(fed, HRSS, case_id, "review-request", {"reason": "对处理意见不满意"}, role="clerk")
    assert view["status"] == "review_requested" and view["review"]["body"] == CITY_HRSS
    # the city 人社局 (next-higher body of the same kind) now shares the case, with its whole history
    v = wait_for(lambda: intake_view(fed, CITY_HRSS, case_id), what="case on the city 人社局")
    assert v["events"][0]["type"] == ledger.REGISTERED
    wait_for(lambda: (v := sv_case(fed, CITY_HRSS, case_id)) and v["status"] == "review_requested",
             what="supervision on the city 人社局")
    decision = {"outcome": "维持", "text": "经复查，原处理意见认定事实清楚，处理恰当，予以维持。"}
    do(fed, HRSS, case_id, "review-decision", decision, expect=403)
    view = do(fed, CITY_HRSS, case_id, "review-decision", decision)
    assert view["status"] == "reviewed" and clock_of(view, "review_decision")["state"] == "met"
    tl.at(30)
    view = do(fed, CITY_HRSS, case_id, "re-review-request", {"reason": "仍不服"}, role="clerk")
    assert view["re_review"]["body"] == CITY  # no province body in this federation: the city government's bureau
    wait_for(lambda: (v := sv_case(fed, CITY, case_id)) and v["status"] == "re_review_requested",
             what="re-review on the city bureau")
    final = {"outcome": "维持", "text": "经复核，维持复查意见。本意见为复核意见，信访程序终结。"}
    view = do(fed, CITY, case_id, "re-review-decision", final)
    assert view["status"] == "terminated" and view["terminated"]["reason"] == "三级终结"
    v = wait_for(lambda: (v := intake_view(fed, HRSS, case_id)) and v["status"] == "terminated" and v,
                 what="terminated on the holder")
    assert v["status_label"] == "三级终结"
    wait_for(lambda: sv_case(fed, HRSS, case_id)["status"] == "terminated", what="terminated in supervision")
    err = do(fed, HRSS, case_id, "review-request", {"reason": "再次申请"}, role="clerk", expect=409)
    assert "三级终结" in err["error"]["message"]
    q = wait_for(lambda: (q := fed.client(BUREAU).get(f"/api/v1/query/{code}")[1]) and q["status"] == "terminated"
                 and q, what="petitioner's view")
    assert q["reply"]["text"] == final["text"] and q["reply"]["step"] == "复核意见（三级终结）"
    # a later repeat of the same matter, at another desk: recorded on the case and declined in writing
    wait_for(lambda: (v := intake_view(fed, CITY, case_id)) and v["status"] == "terminated", what="terminated on the city")
    st, again = fed.client(CITY).post("/api/v1/petitions", petition(641))
    assert st == 201 and again["status"] == "repeat_declined" and again["case_id"] == case_id, again
    assert "三级终结" in again["reason"] and "不再受理" in again["reason"]
    v = wait_for(lambda: (v := intake_view(fed, BUREAU, case_id)) and "case.repeat_declined" in
                 [e["type"] for e in v["events"]] and v, what="the declined repeat on the bureau's node")
    assert [e["type"] for e in v["events"]].count("case.registered") == 1 and v["status"] == "terminated"
    st, q = fed.client(CITY).get(f"/api/v1/query/{again['query_code']}")
    assert st == 200 and "不再受理" in q["repeat_declined"] and q["case_id"] == case_id


def test_leader_assignment(fed):
    tl = Timeline(fed, 2035)
    tl.at(0)
    case_id, _ = new_case(fed, 651)
    do(fed, BUREAU, case_id, "leader", {"leader": "李明", "title": "区委副书记"}, role="handler", expect=403)
    view = do(fed, BUREAU, case_id, "leader", {"leader": "李明", "title": "区委副书记"}, role="supervisor")
    assert view["leader"]["name"] == "李明"
    v = wait_for(lambda: (v := intake_view(fed, HRSS, case_id)) and v.get("leader") and v, what="leader on the case")
    assert v["leader"]["name"] == "李明" and v["leader"]["title"] == "区委副书记"
    st, r = sv(fed, BUREAU, "leader").get(f"/api/v1/supervision/leaders/{urllib.parse.quote('李明')}/cases")
    assert st == 200 and [c["case_id"] for c in r["cases"]] == [case_id]
    assert r["cases"][0]["clocks"][0]["name"] == "acceptance_notice"


def test_assessment_figures(fed):
    tl = Timeline(fed, 2036)
    tl.at(0)
    c1, _ = new_case(fed, 661)
    c2, _ = new_case(fed, 662)
    c3, _ = new_case(fed, 663)
    c4, _ = new_case(fed, 664)
    c5, _ = new_case(fed, 665, at=CITY)  # lodged at the city bureau for a county matter: 越级访
    st, r = fed.client(CITY).post("/api/v1/petitions", petition(665))  # the same person again: 重信重访
    assert st == 201 and r["status"] == "repeat_linked" and r["case_id"] == c5
    steps = [(1, c5, "accept", None), (2, c4, "decline", {"reason": "不属于信访事项，已告知通过劳动仲裁解决"}),
             (3, c1, "accept", None), (5, c3, "accept", None), (10, c5, "reply", {"text": REPLY_TEXT}),
             (16, c2, "accept", None), (20, c1, "reply", {"text": REPLY_TEXT}),
             (20, c1, "satisfaction", {"rating": "满意"}), (70, c2, "reply", {"text": REPLY_TEXT}),
             (70, c2, "satisfaction", {"rating": "不满意"}), (75, c2, "review-request", {})]
    for day_n, case_id, action, body in steps:
        tl.at(day_n)
        do(fed, HRSS, case_id, action, body)
    tl.at(100)
    query = f"/api/v1/assessment?from={tl.date(0)}&to={tl.date(100)}&cases=true"
    expected = {"cases": 5,
                "timely_acceptance": {"numerator": 4, "denominator": 5, "rate": 0.8},
                "on_time_completion": {"numerator": 3, "denominator": 4, "rate": 0.75},
                "evaluation_participation": {"numerator": 2, "denominator": 3, "rate": 0.6667},
                "satisfaction": {"numerator": 1, "denominator": 2, "rate": 0.5},
                "first_time_resolution": {"numerator": 1, "denominator": 3, "rate": 0.3333},
                "repeat_rate": {"numerator": 1, "denominator": 5, "rate": 0.2},
                "skipped_level_visits": 1}

    def figures(agency, q=query):
        st, r = sv(fed, agency, "auditor").get(q)
        assert st == 200, r
        return r

    def matches(r):
        return {k: r["total"][k] for k in expected} == expected and r

    # every node that shares the cases gets the same figures
    results = {a: wait_for(lambda: matches(figures(a)), what=f"figures on {a}") for a in (BUREAU, HRSS, CITY)}
    for r in results.values():
        assert r["cases"] == sorted([c1, c2, c3, c4, c5])
        assert r["total"]["overdue"]["acceptance_notice"] == 1 and r["total"]["overdue"]["handling"] == 1
        assert [a["agency"] for a in r["by_agency"]] == [HRSS] and [d["division"] for d in r["by_division"]] == ["510104"]
    assert len({str(r["total"]) for r in results.values()}) == 1
    narrowed = figures(CITY, f"{query}&division=510104&agency={HRSS}")
    assert {k: narrowed["total"][k] for k in expected} == expected
    assert figures(CITY, f"{query}&agency={BUREAU}")["total"]["cases"] == 0
    node = fed.fed.node(CITY)
    req = urllib.request.Request(f"{node.url('supervision')}{query}&format=csv",
                                 headers={"Authorization": f"Bearer {node.tokens['auditor']}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(resp.read().decode("utf-8-sig"))))
    assert rows[0][:5] == ["维度", "代码", "名称", "件数", "及时受理率"]
    total = dict(zip(rows[0], rows[1]))
    assert total["件数"] == "5" and total["及时受理率"] == "0.8000" and total["按期办结率"] == "0.7500"
    assert total["满意率"] == "0.5000" and total["越级访数"] == "1" and total["及时受理率（分子/分母）"] == "4/5"
    st, err = sv(fed, CITY, "auditor").get(f"/api/v1/assessment?from={tl.date(10)}&to={tl.date(0)}")
    assert st == 422 and err["error"]["field"] == "from"


def test_postgresql_backend(start_federation, tmp_path, monkeypatch):
    """The supervision service on PostgreSQL: projection, commands, checker and assessment."""
    clock_file = tmp_path / "clock.json"
    monkeypatch.setenv(clock.ENV_VAR, str(clock_file))  # inherited by the node processes
    monkeypatch.setenv("LIANFANG_SUPERVISION_INTERVAL_S", "0.3")
    tl = Timeline(Federation(tmp_path, None, None, None, clock_file, {}), 2030)
    tl.at(0)
    pg = start_federation(NODES[:2], backend="postgresql")
    case_id = new_case(pg, 671)[0]
    tl.at(16)
    order = wait_for(lambda: orders(pg, HRSS, case_id), what="督办 order (PostgreSQL)")[0]
    assert order["level"] == "督办" and order["supervisor"] == BUREAU
    do(pg, HRSS, case_id, "accept")
    tl.at(20)
    do(pg, HRSS, case_id, "reply", {"text": REPLY_TEXT})
    do(pg, HRSS, case_id, "satisfaction", {"rating": "基本满意"}, role="clerk")
    query = f"/api/v1/assessment?from={tl.date(0)}&to={tl.date(20)}"
    want = {"timely_acceptance": {"numerator": 0, "denominator": 1, "rate": 0.0},
            "on_time_completion": {"numerator": 1, "denominator": 1, "rate": 1.0},
            "satisfaction": {"numerator": 1, "denominator": 1, "rate": 1.0}}
    for agency in (BUREAU, HRSS):
        wait_for(lambda: {k: sv(pg, agency, "auditor").get(query)[1]["total"][k] for k in want} == want,
                 what=f"figures on {agency}")
