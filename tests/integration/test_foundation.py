"""Issue 2: the shared case ledger across real node processes, a real nats-server, SQLite and PostgreSQL."""
from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import rpc
from shared.pb import case_pb2, case_pb2_grpc
from tests.support import petition, wait_for

BUREAU, CITY, HRSS = "510104-xfj", "510100-xfj", "510104-rsj"
SMALL = [("510104-xfj", "锦江区信访局", "petition_bureau", "510104"),
         ("510104-rsj", "锦江区人力资源和社会保障局", "hrss", "510104"),
         ("510100-xfj", "成都市信访局", "petition_bureau", "510100")]


def visible(fed, agency, case_id, role="handler"):
    st, body = fed.client(agency, role).get(f"/api/v1/cases/{case_id}")
    return body if st == 200 else None


def test_case_visible_on_another_node(start_federation, backend):
    fed = start_federation(SMALL, backend=backend)
    st, r = fed.client(BUREAU).post("/api/v1/petitions", petition(1))
    assert st == 201, r
    assert r["status"] == "registered" and len(r["query_code"]) == 14
    view = wait_for(lambda: visible(fed, CITY, r["case_id"]), what="case on the city bureau")
    assert view["division"] == "510104" and view["events"][0]["type"] == "case.registered"
    assert view["events"][0]["agency"] == BUREAU
    assert "petitioners" in view and view["petitioners"] is None
    # the petitioner's own view by 查询码, without authentication and without internal notes
    st, q = fed.client(BUREAU, role="clerk").get(f"/api/v1/query/{r['query_code']}")
    assert st == 200 and q["case_id"] == r["case_id"] and "routing" not in q and "events" not in q


def test_stopped_node_catches_up_without_gaps_or_doubles(start_federation):
    fed = start_federation(SMALL)
    fed.node(CITY).stop()
    ids = []
    for n in range(5):
        st, r = fed.client(BUREAU).post("/api/v1/petitions", petition(100 + n))
        assert st == 201
        ids.append(r["case_id"])
    fed.node(CITY).start().wait_ready()
    for case_id in ids:
        view = wait_for(lambda: visible(fed, CITY, case_id), what=f"{case_id} after restart")
        wait_for(lambda: (v := visible(fed, CITY, case_id)) and v["holder"] == HRSS, what="signed for")
        view = visible(fed, CITY, case_id)
        event_ids = [e["id"] for e in view["events"]]
        assert len(event_ids) == len(set(event_ids)), "an event was applied twice"
        assert [e["type"] for e in view["events"]] == ["case.registered", "case.offered", "case.signed_for"]


def test_bus_down_loses_nothing(start_federation):
    fed = start_federation(SMALL)
    fed.nats.stop()
    ids = []
    for n in range(4):
        st, r = fed.client(BUREAU).post("/api/v1/petitions", petition(200 + n))
        assert st == 201, r  # durable in the outbox although the bus is away
        ids.append(r["case_id"])
    fed.nats.start()
    for case_id in ids:
        wait_for(lambda: (v := visible(fed, CITY, case_id)) and v["holder"] == HRSS, timeout=40,
                 what=f"{case_id} on the city node after the bus came back")


def test_idempotency_key_gives_one_case(start_federation, backend):
    fed = start_federation(SMALL[:1], backend=backend)
    key = str(uuid.uuid4())
    body = petition(300)
    answers = [fed.client(BUREAU).post("/api/v1/petitions", body, headers={"Idempotency-Key": key}) for _ in range(3)]
    assert {st for st, _ in answers} == {201}
    assert len({r["case_id"] for _, r in answers}) == 1
    assert len({r["query_code"] for _, r in answers}) == 1
    other = dict(body, title="另一个事项")
    st, err = fed.client(BUREAU).post("/api/v1/petitions", other, headers={"Idempotency-Key": key})
    assert st == 409 and err["error"]["field"] == "Idempotency-Key"


def _count(db_file, table):
    with sqlite3.connect(db_file) as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("change,status,names", [
    ({"petitioner": {"name": "甲", "id_number": "510104199001011234"}}, 422, "id_number"),
    ({"division": "999999"}, 422, "division"),
    ({"division": "51010"}, 422, "division"),
    ({"content": "   "}, 422, "content"),
    ({"content": ""}, 422, "content"),
    ({"persons": 0}, 422, "persons"),
    ({"channel": "pigeon"}, 422, "channel"),
    ({"petitioner": {"name": "甲", "phone": "12345"}}, 422, "phone"),
    ({"category": "不存在的类别"}, 422, "category"),
    ({"content": "长" * 400_000}, 413, "body"),
    ({"unexpected": 1}, 422, "unexpected"),
])
def test_bad_input_is_refused_and_nothing_stored(start_federation, change, status, names):
    fed = start_federation(SMALL[:1])
    st, err = fed.client(BUREAU).post("/api/v1/petitions", petition(400, **change))
    assert st == status, err
    assert names in str(err)
    db = fed.fed.root / BUREAU / "intake.db"
    assert _count(db, "cases") == 0 and _count(db, "outbox") == 0 and _count(db, "petitioners") == 0


def test_malformed_bodies_are_refused(start_federation):
    fed = start_federation(SMALL[:1])
    c = fed.client(BUREAU)
    st, err = c.call("POST", "/api/v1/petitions", raw=b'{"channel": "visit", ')
    assert st == 422 and "JSON" in err["error"]["message"]
    st, err = c.call("POST", "/api/v1/petitions", raw=b'{"title": "\xff\xfe"}')
    assert st == 422 and "UTF-8" in err["error"]["message"]
    st, _ = fed.client(BUREAU, role="auditor").post("/api/v1/petitions", petition(401))
    assert st == 403
    from tests.support import Http
    st, _ = Http(fed.fed.node(BUREAU).url()).post("/api/v1/petitions", petition(402))
    assert st == 401
    assert _count(fed.fed.root / BUREAU / "intake.db", "cases") == 0


def test_a_body_without_declared_length_is_bounded_and_a_half_sent_one_does_nothing(start_federation):
    """BodyLimit counts what arrives, not what is declared: a chunked body past the limit is refused (413)
    and one whose client leaves before the end is not handled at all."""
    fed = start_federation(SMALL[:1])
    clerk = fed.client(BUREAU)
    host, port = clerk.base.split("//")[1].split(":")
    body = json.dumps(petition(403, content="长" * 30_000), ensure_ascii=False).encode()  # ≈ 90 kB
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/api/v1/petitions", body=(body[i:i + 8192] for i in range(0, len(body), 8192)),
                 headers={"Authorization": f"Bearer {clerk.token}", "Content-Type": "application/json"},
                 encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413 and json.loads(resp.read())["error"]["code"] == "too_large"
    conn.close()
    # half of a well-formed registration, then the client is gone
    whole = json.dumps(petition(404), ensure_ascii=False).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /api/v1/petitions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {clerk.token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(whole)}\r\n\r\n".encode()
                     + whole[:len(whole) // 2])
    st, r = clerk.post("/api/v1/petitions", petition(405))  # the desk goes on
    assert st == 201, r
    db = fed.fed.root / BUREAU / "intake.db"
    assert _count(db, "cases") == 1 and _count(db, "petitioners") == 1


def test_grpc_health_and_case_service(start_federation):
    fed = start_federation(SMALL)
    st, r = fed.client(BUREAU).post("/api/v1/petitions", petition(500))
    wait_for(lambda: (v := visible(fed, HRSS, r["case_id"])) and v["holder"] == HRSS, what="signed for")
    for node in fed.fed.nodes:
        for svc, addr in node.grpc.items():
            with fed.grpc_channel(addr, node.agency) as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (node.agency, svc)
    # The holder asks the receiving node for the full view, identity included (it handles the case) …
    # (each node calls with its own certificate: mutual TLS, the agency is the certificate's)
    addr = fed.fed.node(BUREAU).grpc["intake"]
    with fed.grpc_channel(addr, HRSS) as ch:
        stub = case_pb2_grpc.CaseServiceStub(ch)
        full = stub.GetCase(case_pb2.GetCaseRequest(case_id=r["case_id"]), timeout=5,
                            metadata=rpc.call_metadata(HRSS, "handler-1", "handler"))
        assert full.holder == HRSS and full.identity_disclosed and full.petitioner.name == "测试人500"
    # … the city bureau shares the case (it supervises) but does not handle it: no identity.
    with fed.grpc_channel(addr, CITY) as ch:
        seen = case_pb2_grpc.CaseServiceStub(ch).GetCase(case_pb2.GetCaseRequest(case_id=r["case_id"]), timeout=5,
                                                         metadata=rpc.call_metadata(CITY, "sup-1", "supervisor"))
        assert not seen.identity_disclosed and seen.petitioner.name == ""
    with fed.grpc_channel(addr, HRSS) as ch:
        stub = case_pb2_grpc.CaseServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.GetCase(case_pb2.GetCaseRequest(case_id="LF000"), timeout=5,
                         metadata=rpc.call_metadata(HRSS, "h", "handler"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    # The receiving node's intake is down: the holder still answers the case, and says clearly that
    # identity cannot be had right now (503, nothing half-shown) instead of failing with a 500.
    fed.node(BUREAU).stop(only=("intake",))
    st, err = fed.client(HRSS, "handler").get(f"/api/v1/cases/{r['case_id']}?identity=true")
    assert st == 503 and err["error"]["code"] == "unavailable" and "身份信息暂不可得" in err["error"]["message"], err
    st, plain = fed.client(HRSS, "handler").get(f"/api/v1/cases/{r['case_id']}")
    assert st == 200 and plain["holder"] == HRSS and plain["petitioners"] is None
