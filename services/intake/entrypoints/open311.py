"""Open311 GeoReport v2 on intake (DESIGN §4.5). Translates only.

* services = petition categories (service_code = category name, jurisdiction_id = division code);
* POST requests = a petition registered through `handlers.register_petition` (channel "online"), the same
  command the intake API runs, so a request is stored exactly like any other petition;
* GET requests = records read from this node's case read model. Petitioner identity never appears; the
  content of a 检举控告 case is not published either.

Mapping notes: `address_string` and `lat`/`long` name the place of the matter (事发地点), not the petitioner's
home, so they are appended to the petition content and read back from it. `email` is accepted but not
stored: a petitioner record has no e-mail field. `token` in the POST answer is the 查询码."""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select

from services.intake import handlers
from services.intake.adapters.orm import CaseEventRow, CaseRow
from services.intake.domain.petition import PetitionIn
from shared import clock, ledger
from shared.categories import CATEGORIES, REPORT_CATEGORY
from shared.errors import LianfangError, Unauthenticated
from shared.web import Principal, authenticate

PREFIX = "/open311/v2"
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 200
MAX_RANGE = timedelta(days=90)
MAX_RECORDS = 1000
# A written decision is out and no body owes an act (不予受理, 答复, 复查意见, 三级终结); a review request reopens.
CLOSED_STATUSES = {"declined", "replied", "reviewed", "terminated"}
ATTRIBUTES = [
    {"variable": True, "code": "title", "datatype": "string", "required": False, "order": 1,
     "description": "事项标题", "datatype_description": "不超过100字；缺省取描述的第一行"},
    {"variable": True, "code": "persons", "datatype": "number", "required": False, "order": 2,
     "description": "反映人数", "datatype_description": "正整数，缺省为1；5人及以上为集体访"},
]
# PetitionIn field → the Open311 parameter a client sent it as, for error messages
_PARAMS = {"content": "description", "division": "jurisdiction_id", "category": "service_code",
           "title": "attribute[title]", "persons": "attribute[persons]", "petitioner.name": "first_name/last_name",
           "petitioner.phone": "phone"}
_PLACE = re.compile(r"\n事发地点：(?P<address>[^\n]*?)(?:（坐标 (?P<lat>-?[\d.]+),(?P<long>-?[\d.]+)）)?\Z")


class Open311Error(Exception):
    """An error in the GeoReport shape: [{"code": 400, "description": "..."}]."""

    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


def build_open311_router(rt, ctx: handlers.IntakeContext) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["Open311 GeoReport v2"])

    @router.get("/services.{fmt}", summary="服务列表 = 信访类别 (GeoReport service list)")
    async def service_list(fmt: str):
        return await _answer(fmt, "services", "service", lambda: [_service(c) for c in CATEGORIES])

    @router.get("/services/{code}.{fmt}", summary="服务定义 (GeoReport service definition)")
    async def service_definition(code: str, fmt: str):
        def definition():
            if code not in CATEGORIES:
                raise Open311Error(404, f"service_code: 未知服务类别 {code} (unknown service_code)")
            return {"service_code": code, "attributes": ATTRIBUTES}
        return await _answer(fmt, "service_definition", None, definition)

    @router.post("/requests.{fmt}", status_code=201, summary="提交信访事项 (GeoReport POST service request)")
    async def create(fmt: str, request: Request):
        async def work():
            if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                raise Open311Error(400, "请求体须为表单 application/x-www-form-urlencoded (GeoReport v2 form)")
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            who = _clerk(rt.cfg, request, form.get("api_key", ""))
            petition = petition_from_form(form, rt.cfg.division)
            result = await rt.db.run_async(lambda s: handlers.register_petition(
                s, ctx, petition, who, request.headers.get("idempotency-key")))
            return [_created(result)]
        return await _answer(fmt, "service_requests", "request", work, status=201)

    @router.get("/requests.{fmt}", summary="查询信访事项 (GeoReport GET service requests)")
    async def request_list(fmt: str, request: Request):
        def read():
            q = request.query_params
            ids, codes, statuses = (_listed(q, name) for name in ("service_request_id", "service_code", "status"))
            if set(statuses) - {"open", "closed"}:
                raise Open311Error(400, "status: 只能为 open 或 closed (status must be open or closed)")
            start, end = _date_range(q.get("start_date"), q.get("end_date"), clock.now())
            stmt = select(CaseRow).order_by(CaseRow.registered_at.desc()).limit(MAX_RECORDS)
            if ids:  # the spec: a list of ids overrides every other filter
                stmt = stmt.where(CaseRow.case_id.in_(ids))
            else:
                stmt = stmt.where(CaseRow.registered_at >= start, CaseRow.registered_at <= end)
                if codes:
                    stmt = stmt.where(CaseRow.category.in_(codes))
                if set(statuses) == {"open"}:
                    stmt = stmt.where(CaseRow.status.not_in(CLOSED_STATUSES))
                elif set(statuses) == {"closed"}:
                    stmt = stmt.where(CaseRow.status.in_(CLOSED_STATUSES))
                if q.get("jurisdiction_id"):
                    stmt = stmt.where(CaseRow.division == q["jurisdiction_id"])
            with rt.db.read() as s:
                return records(s, rt.directory, list(s.scalars(stmt)), clock.now())
        return await _answer(fmt, "service_requests", "request", lambda: asyncio.to_thread(read))

    @router.get("/requests/{case_id}.{fmt}", summary="单个信访事项 (GeoReport GET service request)")
    async def one_request(case_id: str, fmt: str):
        def read():
            with rt.db.read() as s:
                case = s.get(CaseRow, case_id)
                if case is None:
                    raise Open311Error(404, f"service_request_id: 事项 {case_id} 不存在或未与本机构共享 (not found)")
                return records(s, rt.directory, [case], clock.now())
        return await _answer(fmt, "service_requests", "request", lambda: asyncio.to_thread(read))

    return router


def _clerk(cfg, request: Request, api_key: str) -> Principal:
    """api_key = a clerk's bearer token of this node, checked by the same code as the Authorization header."""
    scope = {**request.scope, "headers": [(b"authorization", b"Bearer " + api_key.encode())]}
    try:
        who = authenticate(cfg, Request(scope))
    except Unauthenticated:
        raise Open311Error(403, "api_key 无效或缺失 (invalid api_key)") from None
    if who.role != "clerk":
        raise Open311Error(403, "api_key 须为本机构登记员的令牌 (api_key must belong to a clerk)")
    return who


def petition_from_form(form: dict[str, str], default_division: str) -> PetitionIn:
    """A GeoReport POST form → the petition the intake API would receive; Open311Error(400) when invalid."""
    form = {k: v.strip() for k, v in form.items()}
    attributes = {k[len("attribute["):-1]: v for k, v in form.items() if k.startswith("attribute[") and k.endswith("]")}
    if unknown := sorted(attributes.keys() - {a["code"] for a in ATTRIBUTES}):
        raise Open311Error(400, f"attribute[{unknown[0]}]: 未知属性 (unknown attribute; see services/{{code}}.json)")
    code, description = form.get("service_code", ""), form.get("description", "")
    for name, value in (("service_code", code), ("description", description)):
        if not value:
            raise Open311Error(400, f"{name}: 缺少必填字段 (field required)")
    if code not in CATEGORIES:
        raise Open311Error(400, f"service_code: 未知服务类别，可选 {', '.join(CATEGORIES)} (unknown service_code)")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description: 不得超过{MAX_DESCRIPTION}字 (at most {MAX_DESCRIPTION} characters)")
    name = _full_name(form.get("first_name", ""), form.get("last_name", ""))
    if not name and (form.get("phone") or form.get("email")):
        raise Open311Error(400, "first_name/last_name: 留有联系方式时须填写姓名 (name required with phone or email)")
    body = {"channel": "online", "division": form.get("jurisdiction_id") or default_division,
            "title": attributes.get("title") or description.splitlines()[0][:30],
            "content": description + _place(form), "category": code, "anonymous": name is None,
            "petitioner": {"name": name, "phone": form.get("phone") or None} if name else None}
    if persons := attributes.get("persons"):
        if not persons.isdigit() or int(persons) < 1:
            raise Open311Error(400, "attribute[persons]: 须为正整数 (must be a positive whole number)")
        body["persons"] = int(persons)
    try:
        return PetitionIn.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        raise Open311Error(400, f"{_PARAMS.get(field, field)}: {message}" if field else message) from None


def _full_name(first: str, last: str) -> str | None:
    """Chinese names are written 姓名 (last_name first, no space); others "first last"."""
    if re.fullmatch(r"[\u3400-\u9fff·]+", last + first):
        return last + first
    return " ".join(x for x in (first, last) if x) or None


def _place(form: dict[str, str]) -> str:
    address, lat, long = form.get("address_string", ""), form.get("lat", ""), form.get("long", "")
    if len(address) > MAX_ADDRESS:
        raise Open311Error(400, f"address_string: 不得超过{MAX_ADDRESS}字 (at most {MAX_ADDRESS} characters)")
    coords = ""
    if lat or long:
        try:
            lat_f, long_f = float(lat), float(long)
        except ValueError:
            raise Open311Error(400, "lat/long: 须同时提供且为数字 (lat and long must both be numbers)") from None
        if not (-90 <= lat_f <= 90 and -180 <= long_f <= 180):
            raise Open311Error(400, "lat/long: 坐标超出范围 (coordinates out of range)")
        coords = f"（坐标 {lat_f},{long_f}）"
    return f"\n事发地点：{address}{coords}" if address or coords else ""


def _created(result: dict) -> dict:
    code = result["query_code"]
    if result["status"] == "repeat_declined":
        notice = f"{result['reason']}（原事项 {result['repeat_of']}）；查询码 {code}"
    elif result["status"] == "repeat_linked":
        notice = f"与原信访事项为同一事项，已并入 {result['repeat_of']}（重复信访）；查询码 {code}"
    else:
        notice = f"已登记。请妥善保存查询码 {code}，凭此查询办理进度"
    return {"service_request_id": result["case_id"], "token": code, "service_notice": notice, "account_id": None}


def _service(code: str) -> dict:
    info = CATEGORIES[code]
    return {"service_code": code, "service_name": code, "description": f"{info['group']}类信访事项：{code}",
            "metadata": True, "type": "realtime", "keywords": ", ".join(info["keywords"]), "group": info["group"]}


def records(s, directory, cases: list[CaseRow], now: datetime) -> list[dict]:
    """GeoReport records for cases of this node's read model: no identity, no internal notes."""
    ids = [c.case_id for c in cases]
    if not ids:
        return []
    registered = dict(s.execute(select(CaseEventRow.case_id, CaseEventRow.payload).where(
        CaseEventRow.case_id.in_(ids), CaseEventRow.type == ledger.REGISTERED)).all())
    updated = dict(s.execute(select(CaseEventRow.case_id, func.max(CaseEventRow.time)).where(
        CaseEventRow.case_id.in_(ids)).group_by(CaseEventRow.case_id)).all())
    return [_record(c, registered.get(c.case_id, {}), updated.get(c.case_id), directory, now) for c in cases]


def _record(case: CaseRow, registration: dict, updated: str | None, directory, now: datetime) -> dict:
    st = case.state
    content = registration.get("content", "")
    place = _PLACE.search(content)
    description = content[:place.start()] if place else content
    confidential = st.get("category") == REPORT_CATEGORY or bool(st.get("reported_agency"))
    if confidential:
        description, place = None, None
    where = place.groupdict() if place else {}
    holder = directory.get(st["holder"])
    expected = next((d["due"] for d in reversed(ledger.deadlines(st, now)) if d["supervised"] and not d["done_at"]),
                    None)  # the statutory act a body owes next: 受理告知, 办理答复, 复查/复核意见
    return {
        "service_request_id": case.case_id,
        "status": "closed" if case.status in CLOSED_STATUSES else "open",
        "status_notes": ledger.STATUS_LABELS.get(case.status, case.status),
        "service_name": st.get("category"), "service_code": st.get("category"), "description": description,
        "agency_responsible": holder.name if holder else st["holder"],
        "service_notice": "检举控告事项，内容不公开" if confidential else None,
        "requested_datetime": st["registered_at"], "updated_datetime": updated or st["registered_at"],
        "expected_datetime": expected, "address": where.get("address") or None, "address_id": None,
        "zipcode": None, "lat": float(where["lat"]) if where.get("lat") else None,
        "long": float(where["long"]) if where.get("long") else None, "media_url": None,
    }


def _listed(params, name: str) -> list[str]:
    """A GeoReport list parameter: comma-delimited and/or repeated."""
    return [v.strip() for raw in params.getlist(name) for v in raw.split(",") if v.strip()]


def _date_range(start_raw: str | None, end_raw: str | None, now: datetime) -> tuple[datetime, datetime]:
    """The spec's window: at most 90 days; the most recent 90 days by default."""
    start, end = _w3c("start_date", start_raw), _w3c("end_date", end_raw)
    end = end or (start + MAX_RANGE if start else now)
    start = start or end - MAX_RANGE
    if start > end:
        raise Open311Error(400, "start_date: 不得晚于 end_date (start_date is after end_date)")
    if end - start > MAX_RANGE:
        raise Open311Error(400, f"start_date/end_date: 查询区间不得超过{MAX_RANGE.days}天 "
                                f"(the range may not span more than {MAX_RANGE.days} days)")
    return start, end


def _w3c(name: str, raw: str | None) -> datetime | None:
    if not raw or not raw.strip():
        return None
    try:  # a "+08:00" sent unencoded in a query string arrives as " 08:00"
        t = datetime.fromisoformat(raw.strip().replace(" ", "+").replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: 日期时间格式无效，应如 2026-01-01T00:00:00Z (invalid W3C datetime)") from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


async def _answer(fmt: str, root: str, item: str | None, work, status: int = 200) -> Response:
    """Run `work` (sync or async) and render its result, or a GeoReport error, as JSON or XML."""
    if fmt not in ("json", "xml"):
        return _render("json", [{"code": 404, "description": f"不支持的格式 .{fmt}，请用 .json 或 .xml"}],
                       "errors", "error", 404)
    try:
        data = work()
        if asyncio.iscoroutine(data):
            data = await data
    except Open311Error as e:
        return _render(fmt, [{"code": e.code, "description": e.description}], "errors", "error", e.code)
    except LianfangError as e:  # domain errors from the handler keep the GeoReport shape
        code = {401: 403, 422: 400}.get(e.http_status, e.http_status)
        return _render(fmt, [{"code": code, "description": e.message}], "errors", "error", code)
    return _render(fmt, data, root, item, status)


def _render(fmt: str, data, root: str, item: str | None, status: int) -> Response:
    if fmt == "json":
        return JSONResponse(data, status_code=status)
    top = ET.Element(root)
    for row in (data if item else [data]):
        _fill(ET.SubElement(top, item) if item else top, row)
    return Response(ET.tostring(top, encoding="utf-8", xml_declaration=True), status_code=status,
                    media_type="text/xml; charset=utf-8")


def _fill(element: ET.Element, row: dict) -> None:
    for key, value in row.items():
        child = ET.SubElement(element, key)
        if isinstance(value, list):  # <attributes><attribute>…</attribute></attributes>
            for entry in value:
                _fill(ET.SubElement(child, key.removesuffix("s")), entry)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)
