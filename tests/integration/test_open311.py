"""Open311 GeoReport v2 on intake (DESIGN §4.5) against real node processes and a real nats-server.

Requests are read back with `georeport` (PyPI), a third-party GeoReport v2 client. It cannot create requests
(its own README says so), and the older PyPI clients (`open311`, `three`) are Python 2 only, so requests are
POSTed with plain httpx, form-encoded exactly as the spec and those clients do."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import httpx
from georeport import GeoReport

from shared.categories import CATEGORIES
from tests.integration.test_foundation import BUREAU, HRSS, SMALL
from tests.support import wait_for

HRSS_NAME = dict((a, name) for a, name, *_ in SMALL)[HRSS]
NAME, PHONE, EMAIL = "张三", "13800138000", "zhangsan@example.cn"


def base(fed, agency=BUREAU) -> str:
    return fed.fed.node(agency).url() + "/open311/v2"


def post(fed, fmt="json", token_role="clerk", **form) -> httpx.Response:
    form.setdefault("api_key", fed.fed.node(BUREAU).tokens[token_role])
    return httpx.post(f"{base(fed)}/requests.{fmt}", data=form, timeout=30)


def wage_request(**over) -> dict:
    form = {"service_code": "劳动社保", "jurisdiction_id": "510104", "description": "某建材公司拖欠三个月工资，多次催要无果。",
            "first_name": "三", "last_name": "张", "phone": PHONE, "email": EMAIL,
            "address_string": "锦江区春熙路1号", "lat": "30.657", "long": "104.081", "attribute[persons]": "1"}
    form.update(over)
    return form


def owed(view: dict) -> str | None:
    """The due date of the statutory act a body owes next, from the case view's clocks."""
    return next((d["due"] for d in reversed(view["deadlines"]) if d["supervised"] and not d["done_at"]), None)


def ids(fed, **params) -> set[str]:
    r = httpx.get(f"{base(fed)}/requests.json", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return {x["service_request_id"] for x in r.json()}


def test_third_party_client_creates_and_reads_back(start_federation, backend):
    fed = start_federation(SMALL, backend=backend)
    client = GeoReport(base(fed), jurisdiction="510104")
    services = {s["service_code"]: s for s in client.get_service_list()}
    assert set(services) == set(CATEGORIES)
    assert services["劳动社保"]["group"] == "民生保障" and services["劳动社保"]["type"] == "realtime"
    assert "欠薪" in services["劳动社保"]["keywords"] and services["劳动社保"]["metadata"] is True
    assert {a["code"] for a in client.get_service_definition("劳动社保")["attributes"]} == {"title", "persons"}

    r = post(fed, **wage_request())
    assert r.status_code == 201, r.text
    [created] = r.json()
    case_id, query_code = created["service_request_id"], created["token"]
    # registered by the intake handler like any petition: channel 网上, visible on the case API and by 查询码
    st, view = fed.client(BUREAU, "handler").get(f"/api/v1/cases/{case_id}")
    assert st == 200 and view["channel"] == "online" and view["category"] == "劳动社保"
    st, progress = fed.client(BUREAU).get(f"/api/v1/query/{query_code}")
    assert st == 200 and progress["case_id"] == case_id

    def responsible():
        [rec] = client.get_service_requests(service_request_id=case_id)
        return rec if rec["agency_responsible"] == HRSS_NAME else None

    rec = wait_for(responsible, what="routed to and signed for by the 人社局")
    assert rec["status"] == "open" and rec["service_code"] == rec["service_name"] == "劳动社保"
    assert rec["description"] == wage_request()["description"]
    assert rec["address"] == "锦江区春熙路1号" and (rec["lat"], rec["long"]) == (30.657, 104.081)
    assert rec["zipcode"] is None and rec["requested_datetime"] and rec["updated_datetime"]
    st, view = fed.client(BUREAU, "handler").get(f"/api/v1/cases/{case_id}")
    assert rec["expected_datetime"] == owed(view)
    # the 人社局 node shares the case and, once its read model has the 签收, answers the same
    wait_for(lambda: httpx.get(f"{base(fed, HRSS)}/requests/{case_id}.json", timeout=30).json()[0]
             .get("agency_responsible") == HRSS_NAME, what="the record on the 人社局 node")

    # XML, parsed by the third-party client and by ElementTree
    as_xml = GeoReport(base(fed), jurisdiction="510104", output_format="xml")
    assert as_xml.get_service_requests(service_request_id=case_id)["agency_responsible"] == HRSS_NAME
    assert len(as_xml.get_service_list()) == len(CATEGORIES)
    one = ET.fromstring(httpx.get(f"{base(fed)}/requests/{case_id}.xml", timeout=30).content)
    assert one.tag == "service_requests" and one.findtext("request/service_request_id") == case_id
    assert one.findtext("request/zipcode") is not None and one.find("request/zipcode").text is None

    for path in ("requests.json", "requests.xml", f"requests/{case_id}.json", f"requests/{case_id}.xml"):
        text = httpx.get(f"{base(fed)}/{path}", timeout=30).text
        assert case_id in text and NAME not in text and PHONE not in text and EMAIL not in text, path


def test_requests_filters_and_90_day_cap(start_federation, backend):
    fed = start_federation(SMALL[:1], backend=backend)
    made = []
    for form in (wage_request(), wage_request(service_code="社会救助", description="申请临时救助未获答复"),
                 wage_request(first_name="", last_name="", phone="", email="", description="匿名反映拖欠工资")):
        r = post(fed, **form)
        assert r.status_code == 201, r.text
        made.append(r.json()[0]["service_request_id"])
    wage, relief, anonymous = made
    now = datetime.now(timezone.utc)
    w3c = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731

    assert ids(fed) == {wage, relief, anonymous}  # default: the last 90 days
    [rec] = httpx.get(f"{base(fed)}/requests/{anonymous}.json", timeout=30).json()
    assert rec["agency_responsible"] and rec["address"] == "锦江区春熙路1号"
    st, view = fed.client(BUREAU, "handler").get(f"/api/v1/cases/{anonymous}")
    acceptance = next(d for d in view["deadlines"] if d["name"] == "acceptance_notice")
    assert rec["expected_datetime"] == acceptance["due"] == owed(view)  # 受理告知 (15日), nobody has accepted yet
    assert ids(fed, service_code="劳动社保") == {wage, anonymous}
    assert ids(fed, service_code="劳动社保,社会救助") == {wage, relief, anonymous}
    assert ids(fed, service_request_id=f"{wage},{relief}", service_code="生态环境") == {wage, relief}  # ids override
    assert ids(fed, status="open") == {wage, relief, anonymous} and ids(fed, status="closed") == set()
    assert ids(fed, jurisdiction_id="510100") == set()
    assert ids(fed, start_date=w3c(now - timedelta(days=10)), end_date=w3c(now + timedelta(days=1))) == set(made)
    assert ids(fed, start_date=w3c(now + timedelta(days=1))) == set()
    assert ids(fed, end_date=w3c(now - timedelta(days=1))) == set()

    for params, field in [({"start_date": w3c(now - timedelta(days=100)), "end_date": w3c(now)}, "90"),
                          ({"start_date": w3c(now), "end_date": w3c(now - timedelta(days=1))}, "start_date"),
                          ({"start_date": "昨天"}, "start_date"), ({"status": "pending"}, "status")]:
        r = httpx.get(f"{base(fed)}/requests.json", params=params, timeout=30)
        assert r.status_code == 400, params
        [err] = r.json()
        assert err["code"] == 400 and field in err["description"], err
    too_long = ET.fromstring(httpx.get(f"{base(fed)}/requests.xml", timeout=30, params={
        "start_date": w3c(now - timedelta(days=91)), "end_date": w3c(now)}).content)
    assert too_long.tag == "errors" and too_long.findtext("error/code") == "400"
    assert "90" in too_long.findtext("error/description")

    listed = ET.fromstring(httpx.get(f"{base(fed)}/requests.xml", timeout=30).content)
    assert {r.findtext("service_request_id") for r in listed.findall("request")} == set(made)
    assert httpx.get(f"{base(fed)}/requests/LF000.json", timeout=30).status_code == 404


def _count(fed, table: str) -> int:
    with sqlite3.connect(fed.fed.root / BUREAU / "intake.db") as c:
        return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_bad_requests_are_refused_in_spec_shape_and_nothing_stored(start_federation):
    fed = start_federation(SMALL[:1])
    cases = [
        (dict(api_key=""), 403, "api_key"),
        (dict(api_key="lf_guess"), 403, "api_key"),
        (dict(api_key=fed.fed.node(BUREAU).tokens["handler"]), 403, "登记员"),
        (dict(service_code=""), 400, "service_code"),
        (dict(service_code="路灯损坏"), 400, "service_code"),
        (dict(description=""), 400, "description"),
        (dict(description="长" * 4001), 400, "4000"),
        (dict(phone="12345"), 400, "phone"),
        (dict(jurisdiction_id="999999"), 400, "jurisdiction_id"),
        (dict(first_name="", last_name=""), 400, "first_name"),
        ({"attribute[persons]": "几个人"}, 400, "attribute[persons]"),
        ({"attribute[color]": "red"}, 400, "attribute[color]"),
        (dict(lat="30.6", long=""), 400, "lat"),
    ]
    for change, status, names in cases:
        r = post(fed, **wage_request(**change))
        assert r.status_code == status, (change, r.text)
        [err] = r.json()
        assert err["code"] == status and names in err["description"], (change, err)
    r = post(fed, fmt="xml", **wage_request(service_code=""))
    assert r.status_code == 400 and ET.fromstring(r.content).findtext("error/code") == "400"
    r = httpx.post(f"{base(fed)}/requests.json", json=wage_request(api_key=fed.fed.node(BUREAU).tokens["clerk"]))
    assert r.status_code == 400 and "x-www-form-urlencoded" in r.json()[0]["description"]  # not a GeoReport form
    assert httpx.get(f"{base(fed)}/services.csv", timeout=30).status_code == 404
    assert "/open311/v2/requests.{fmt}" in httpx.get(fed.fed.node(BUREAU).url() + "/openapi.json").json()["paths"]
    assert _count(fed, "cases") == 0 and _count(fed, "outbox") == 0 and _count(fed, "petitioners") == 0

