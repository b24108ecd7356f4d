"""The pages router: HTML shells, login, the no-JavaScript form handlers (登记, 查询), the dashboard's case
summary, static files and a same-origin proxy to the node's other services.

Authentication is the API's: a bearer token per user (shared/web.py). The login page keeps it in the
browser's sessionStorage (sent as `Authorization` by fetch) and in an HttpOnly, SameSite=Strict cookie
(`lf_ui_token`, path /ui) for classic form posts. Everything a page shows comes from the services' own
APIs with the user's token, so each service decides what the user may see (identity included)."""
from __future__ import annotations

import asyncio
import hmac
import json
import re
import uuid
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import (FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response,
                               StreamingResponse)
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.intake import handlers
from services.intake.adapters.orm import CaseRow, QueryCodeRow
from services.intake.web import dashboard_data
from services.intake.domain.identifiers import query_code_hash
from services.intake.domain.petition import CHANNEL_LABELS
from shared import clock, divisions, ledger
from shared.categories import CATEGORIES
from shared.crypto import token_hash
from shared.errors import LianfangError
from shared.web import Principal, RateLimiter

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
COOKIE = "lf_ui_token"
ROLE_LABELS = {"clerk": "登记员", "handler": "承办人", "supervisor": "督查员", "leader": "领导", "auditor": "审计员",
               "admin": "管理员"}
TYPE_LABELS = {"petition_bureau": "信访局", "court": "法院", "procuratorate": "检察院", "hrss": "人社局",
               "civil_affairs": "民政局", "justice": "司法局", "public_security": "公安局",
               "natural_resources": "自然资源局", "housing": "住建局", "ecology": "生态环境局", "veterans": "退役军人事务局"}
PROXY_TIMEOUT_S = 15.0
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(js|css|svg|png|ico)$")
_FORWARD_REQUEST = ("content-type", "accept", "idempotency-key", "traceparent")
_FORWARD_RESPONSE = ("content-type", "content-disposition", "retry-after")

# --- zh-CN messages --------------------------------------------------------------------------------------
_CJK = re.compile(r"[\u3400-\u9fff]")
_EN_TAIL = re.compile(r"\s+\(?[A-Za-z]")
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.S)
_PYDANTIC = [
    (re.compile(r"^String should have at least 1 character"), lambda m: "不能为空"),
    (re.compile(r"^String should have at least (\d+) characters?"), lambda m: f"至少需要{m[1]}个字符"),
    (re.compile(r"^String should have at most (\d+) characters?"), lambda m: f"不能超过{m[1]}个字符"),
    (re.compile(r"^Input should be a valid integer"), lambda m: "须为整数"),
    (re.compile(r"^Input should be a valid boolean"), lambda m: "须为是或否"),
    (re.compile(r"^Input should be greater than or equal to (\S+)"), lambda m: f"不能小于{m[1]}"),
    (re.compile(r"^Input should be less than or equal to (\S+)"), lambda m: f"不能大于{m[1]}"),
    (re.compile(r"^Input should be a valid date"), lambda m: "日期格式应为 YYYY-MM-DD"),
    (re.compile(r"^Input should be "), lambda m: "取值无效"),
    (re.compile(r"^Extra inputs are not permitted"), lambda m: "不接受的字段"),
    (re.compile(r"^Field required"), lambda m: "此项为必填"),
]


def zh_message(msg: str) -> str:
    """The Chinese part of an API message ('中文 (English)' → '中文'); pydantic's English ones translated."""
    msg = (msg or "").strip()
    if m := _FIELD_PREFIX.match(msg):
        msg = m[2]
    if msg.startswith("缺少必填字段"):
        return "此项为必填"
    if _CJK.search(msg):
        first = _CJK.search(msg).start()
        tail = _EN_TAIL.search(msg, first)
        return msg[:tail.start()].rstrip(" ：:;；，,") if tail else msg
    for pattern, render in _PYDANTIC:
        if m := pattern.match(msg):
            return render(m)
    return msg


FIELD_LABELS = {"channel": "渠道", "division": "所属行政区划", "title": "事项标题", "content": "主要诉求和事实",
                "category": "类别", "persons": "人数", "target_agency": "信访人指向的机构",
                "reported_agency": "被检举控告的机构", "anonymous": "匿名信访", "petitioner": "信访人",
                "representatives": "集体访代表", "name": "姓名", "id_number": "居民身份证号", "phone": "联系电话",
                "address": "住址"}


def field_label(field: str) -> str:
    """'petitioner.id_number' → '信访人居民身份证号', 'representatives.1.name' → '代表2姓名'."""
    parts = field.split(".")
    if parts[0] == "representatives" and len(parts) == 3 and parts[1].isdigit():
        return f"代表{int(parts[1]) + 1}{FIELD_LABELS.get(parts[2], parts[2])}"
    return "".join(FIELD_LABELS.get(p, p) for p in parts)


def api_errors(body) -> list[dict]:
    """[{field, message}] from the API's error body, the field of a model-level error recovered from its
    message ('petitioner: 非匿名信访须填写信访人 …' reported on 'body')."""
    err = (body or {}).get("error") if isinstance(body, dict) else None
    if not err:
        return [{"field": "body", "message": "请求失败，请稍后再试"}]
    raw = err.get("fields") or [{"field": err.get("field") or "body", "message": err.get("message", "")}]
    out = []
    for f in raw:
        field, msg = f.get("field") or "body", f.get("message") or ""
        if field in ("body", "__root__") and (m := _FIELD_PREFIX.match(msg)):
            field = m[1]
        out.append({"field": field, "message": zh_message(msg)})
    return out


# --- form → petition body ----------------------------------------------------------------------------------

def petition_from_form(form: list[tuple[str, str]]) -> tuple[dict, dict[str, str]]:
    """Build the API body from the form's flat names (petitioner.name, representatives.2.id_number …).
    Empty fields are left out; empty representative rows are dropped. Returns the body and the map from
    the body's field names back to the form's (representatives are renumbered)."""
    flat: dict[str, str] = {}
    for k, v in form:
        if k in ("idempotency_key",):
            continue
        flat[k] = v.strip() if k != "content" else v
    body: dict = {}
    for key in ("channel", "division", "title", "content", "category", "target_agency", "reported_agency"):
        if flat.get(key, "").strip():
            body[key] = flat[key]
    persons = flat.get("persons", "").strip()
    if persons:
        body["persons"] = int(persons) if persons.isdigit() else persons
    if flat.get("anonymous") in ("on", "true", "1", "yes"):
        body["anonymous"] = True
    person_keys = ("name", "id_number", "phone", "address")
    petitioner = {k: flat[f"petitioner.{k}"] for k in person_keys if flat.get(f"petitioner.{k}")}
    if petitioner:
        body["petitioner"] = petitioner
    back: dict[str, str] = {}
    reps = []
    for i in range(10):
        row = {k: flat[f"representatives.{i}.{k}"] for k in person_keys if flat.get(f"representatives.{i}.{k}")}
        if row:
            for k in person_keys:
                back[f"representatives.{len(reps)}.{k}"] = f"representatives.{i}.{k}"
            back[f"representatives.{len(reps)}"] = f"representatives.{i}.name"
            reps.append(row)
    if reps:
        body["representatives"] = reps
    return body, back


def _loopback(hostport: str) -> str:
    host, port = hostport.rsplit(":", 1)
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host in ("::", "[::]"):
        host = "[::1]"
    return f"http://{host}:{port}"


def _local_time(iso: str | None) -> str:
    if not iso:
        return ""
    t = datetime.fromisoformat(iso)
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(ledger.CST).strftime("%Y-%m-%d %H:%M")


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/work"


class Pages:
    """The state the page handlers share: config, templates, the HTTP client of the proxy."""

    def __init__(self, rt, ctx: handlers.IntakeContext):
        self.rt, self.ctx, self.cfg = rt, ctx, rt.cfg
        self.env = Environment(loader=FileSystemLoader(str(WEB_DIR / "templates")),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.env.filters["local_time"] = _local_time
        self.services = {name: _loopback(svc.http) for name, svc in self.cfg.services.items()}
        self.query_limiter = RateLimiter(per_minute=30, burst=10)
        self.login_limiter = RateLimiter(per_minute=20, burst=10)
        self._client: httpx.AsyncClient | None = None

    # --- auth ---
    def principal(self, token: str | None) -> Principal | None:
        if not token:
            return None
        digest = token_hash(token.strip())
        for u in self.cfg.users:
            if hmac.compare_digest(u.token_sha256, digest):
                return Principal(user=u.name, role=u.role, agency=self.cfg.agency)
        return None

    @staticmethod
    def token(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return request.cookies.get(COOKIE) or None

    @staticmethod
    def same_origin(request: Request) -> bool:
        """A state-changing request carried by the cookie must come from this origin (the cookie is
        SameSite=Strict too); Origin, else Referer, must name this host when the browser sends one."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source or source == "null":
            return source is None
        return urlsplit(source).netloc == request.headers.get("host", "")

    # --- rendering ---
    def node(self) -> dict:
        return {"agency": self.cfg.agency, "name": self.cfg.name, "type": self.cfg.type,
                "type_label": TYPE_LABELS.get(self.cfg.type, self.cfg.type), "division": self.cfg.division,
                "division_name": divisions.name(self.cfg.division), "level": self.cfg.level}

    def render(self, name: str, request: Request, status: int = 200, who: Principal | None = None, **data) -> HTMLResponse:
        html = self.env.get_template(name).render(
            node=self.node(), who=who, role_label=ROLE_LABELS.get(who.role) if who else None,
            path=request.url.path, base_url=str(request.base_url).rstrip("/"), **data)
        return HTMLResponse(html, status_code=status, headers=page_headers())

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=PROXY_TIMEOUT_S, follow_redirects=False)
            client = self._client

            async def close_on_stop():
                try:
                    await self.rt.stop.wait()
                finally:
                    await client.aclose()
            self.rt.spawn(close_on_stop())
        return self._client

    async def call(self, service: str, method: str, path: str, token: str, body=None,
                   headers: dict | None = None) -> tuple[int, object]:
        """A call to one of this node's services on the user's behalf (server side, for form posts)."""
        h = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
        content = None
        if body is not None:
            h["Content-Type"] = "application/json"
            content = json.dumps(body, ensure_ascii=False).encode()
        r = await self.client.request(method, self.services[service] + path, headers=h, content=content)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text


def page_headers(extra: dict | None = None) -> dict:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store", **(extra or {})}


def _directory_choices(ctx: handlers.IntakeContext) -> list[dict]:
    return [{"agency": n.agency, "name": n.name} for n in ctx.directory.nodes]


def _division_choices(code: str) -> list[dict]:
    table = divisions.table()
    near = list(reversed(divisions.chain(code)))
    children = sorted(c for c in table if c not in near and divisions.parent(c) == code)
    return [{"code": c, "name": table[c]} for c in near + children]


# --- the router ---------------------------------------------------------------------------------------------

def build_pages_router(rt, ctx: handlers.IntakeContext) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    pages = Pages(rt, ctx)

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303, headers=page_headers())

    def form_context(values: dict | None = None, errors: dict | None = None) -> dict:
        values = values or {}
        return {"channels": CHANNEL_LABELS, "category_options": [(c, c) for c in CATEGORIES],
                "agencies_options": [(a["agency"], a["name"]) for a in _directory_choices(ctx)],
                "division_choices": _division_choices(rt.cfg.division),
                "reps_open": any(k.startswith("representatives") and v for k, v in {**values, **(errors or {})}.items())}

    async def read_form(request: Request) -> list[tuple[str, str]]:
        return parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)

    # --- entry, login, config ---

    @router.get("/ui")
    @router.get("/ui/")
    async def ui_home(request: Request):
        who = pages.principal(pages.token(request))
        return RedirectResponse("/ui/work" if who else "/ui/query", status_code=303)

    @router.get("/ui/login")
    async def login_page(request: Request, next: str | None = None):
        who = pages.principal(pages.token(request))
        return pages.render("login.html", request, who=who, next=_safe_next(next), error=None, title="登录")

    @router.post("/ui/login")
    async def login(request: Request):
        pages.login_limiter.check(request.client.host if request.client else "?")
        if not pages.same_origin(request):  # no logging a victim in as someone else from another site
            return pages.render("message.html", request, status=403, who=None, title="请求被拒绝",
                                message="请求来源不是本站，已拒绝")
        form = dict(await read_form(request))
        nxt = _safe_next(form.get("next"))
        token = (form.get("token") or "").strip()
        who = pages.principal(token)
        if who is None:
            error = "请粘贴令牌" if not token else "令牌无效，请核对后重新粘贴"
            return pages.render("login.html", request, status=401 if token else 422, who=None, next=nxt,
                                error=error, title="登录")
        resp = RedirectResponse(nxt, status_code=303, headers=page_headers())
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https", max_age=12 * 3600)
        return resp

    @router.post("/ui/logout")
    async def logout(request: Request):
        resp = RedirectResponse("/ui/login", status_code=303, headers=page_headers())
        resp.delete_cookie(COOKIE, path="/ui")
        return resp

    @router.get("/ui/config.json")
    async def ui_config(request: Request):
        """What the pages need to know about this node: identity, services and their addresses (the
        pages reach them through /ui/api/<service>/), and who is logged in."""
        who = pages.principal(pages.token(request))
        return JSONResponse({
            "node": pages.node(),
            "services": {name: {"http": url, "proxy": f"/ui/api/{name}/"} for name, url in pages.services.items()},
            "user": {"user": who.user, "role": who.role, "role_label": ROLE_LABELS.get(who.role)} if who else None,
            "categories": list(CATEGORIES), "channels": CHANNEL_LABELS,
            "agencies": {n.agency: n.name for n in ctx.directory.nodes},
            "division_choices": _division_choices(rt.cfg.division),
            "today": ledger.local_date(clock.now()).isoformat(),
        }, headers=page_headers())

    @router.get("/ui/static/{name}")
    async def static(name: str):
        path = STATIC_DIR / name
        if not _STATIC_NAME.match(name) or not path.is_file():
            return Response("未找到 (not found)", status_code=404, media_type="text/plain; charset=utf-8")
        return FileResponse(path, media_type=_STATIC_TYPES[path.suffix],
                            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    # --- 1. 登记台 ---

    @router.get("/ui/register")
    async def register_page(request: Request):
        who = pages.principal(pages.token(request))
        if who is None:
            return login_redirect(request)
        return pages.render("register.html", request, who=who, title="登记台", values={"division": rt.cfg.division,
                            "channel": "visit", "persons": "1"}, errors={}, summary=[], result=None,
                            idempotency_key=uuid.uuid4().hex, **form_context())

    @router.post("/ui/register")
    async def register_submit(request: Request):
        """The form without JavaScript: the same API call, errors rendered next to their fields."""
        token = pages.token(request)
        who = pages.principal(token)
        if who is None:
            return login_redirect(request)
        if not pages.same_origin(request):
            return pages.render("message.html", request, status=403, who=who, title="请求被拒绝",
                                message="请求来源不是本站，已拒绝 (cross-site request refused)")
        form = await read_form(request)
        values = dict(form)
        key = values.get("idempotency_key") or uuid.uuid4().hex
        body, back = petition_from_form(form)
        status, out = await pages.call("intake", "POST", "/api/v1/petitions", token, body,
                                       headers={"Idempotency-Key": key})
        if status == 201:
            return pages.render("register.html", request, status=201, who=who, title="登记成功", values={},
                                errors={}, summary=[], result={**out, "title": body.get("title"),
                                                               "registered": _local_time(clock.now().isoformat())},
                                idempotency_key=uuid.uuid4().hex, **form_context())
        if status == 401:
            return login_redirect(request)
        errors: dict[str, str] = {}
        summary = []
        for e in api_errors(out):
            field = back.get(e["field"], e["field"])
            summary.append({"field": field, "label": field_label(field) if field != "body" else "",
                            "message": e["message"],
                            "anchor": {"petitioner": "petitioner.name", "representatives": "representatives.0.name"}
                            .get(field, field)})
            errors.setdefault(field, e["message"])
        if status == 403:
            summary = [{"field": "body", "message": zh_message((out.get("error") or {}).get("message", "无登记权限"))}]
        return pages.render("register.html", request, status=status if status in (403, 409, 422) else 400, who=who,
                            title="登记台", values=values, errors=errors, summary=summary, result=None,
                            idempotency_key=key, **form_context(values, errors))

    # --- 2–5. pages whose data the browser fetches ---

    def shell(template: str, title: str, **extra):
        async def handler(request: Request):
            who = pages.principal(pages.token(request))
            if who is None:
                return login_redirect(request)
            params = {k: v for k, v in request.path_params.items()}
            return pages.render(template, request, who=who, title=title, **params, **extra)
        return handler

    @router.get("/ui/cases")
    async def open_case(id: str = ""):
        case_id = re.sub(r"[^A-Za-z0-9]", "", id)
        return RedirectResponse(f"/ui/cases/{case_id}" if case_id else "/ui/work", status_code=303)

    router.add_api_route("/ui/work", shell("work.html", "待办"), methods=["GET"])
    router.add_api_route("/ui/cases/{case_id}", shell("case.html", "案件"), methods=["GET"])
    router.add_api_route("/ui/dashboard", shell("dashboard.html", "督办看板"), methods=["GET"])

    @router.get("/ui/centre")
    async def centre_page(request: Request, screen: str | None = None):
        who = pages.principal(pages.token(request))
        if who is None:
            return login_redirect(request)
        return pages.render("centre.html", request, who=who, title="联合接访", screen=screen in ("1", "true", "yes"))

    # --- 6. 查询 (public) ---

    def query_read(code: str) -> dict:
        with rt.db.read() as s:
            row = s.get(QueryCodeRow, query_code_hash(code))
            case = s.get(CaseRow, row.case_id) if row else None
            if case is None:
                return {}
            return handlers.query_view(handlers.case_view(s, rt.directory, case, clock.now()))

    @router.get("/ui/query")
    async def query_page(request: Request):
        return pages.render("query.html", request, who=None, title="信访事项查询", code="", error=None, view=None)

    @router.post("/ui/query")
    async def query_submit(request: Request):
        form = dict(await read_form(request))
        code = re.sub(r"\s+", "", form.get("code") or "").upper()
        try:
            pages.query_limiter.check(request.client.host if request.client else "?")
        except LianfangError:
            return pages.render("query.html", request, status=429, who=None, title="信访事项查询", code=code,
                                error="查询过于频繁，请稍后再试", view=None)
        if not re.fullmatch(r"[A-Z0-9]{4}-?[A-Z0-9]{4}-?[A-Z0-9]{4}", code):
            return pages.render("query.html", request, status=422, who=None, title="信访事项查询", code=code,
                                error="查询码格式不正确：应为12位字母和数字，如 ABCD-EFGH-JKMN", view=None)
        view = await asyncio.to_thread(query_read, code)
        if not view:
            return pages.render("query.html", request, status=404, who=None, title="信访事项查询", code=code,
                                error="未找到该查询码对应的信访事项，请核对后重新输入", view=None)
        return pages.render("query.html", request, who=None, title="信访事项查询", code=code, error=None, view=view)

    # --- the dashboard's figures from this node's read model (SQL over the dashboard columns) ---

    def names() -> dict[str, str]:
        return {n.agency: n.name for n in ctx.directory.nodes}

    def overview(date_from: date, date_to: date, division: str | None) -> dict:
        with rt.db.read() as s:
            return dashboard_data.overview(s, date_from, date_to, division, clock.now(), names())

    def overview_csv(date_from: date, date_to: date, division: str | None):
        with rt.db.read() as s:
            yield from dashboard_data.case_csv(s, date_from, date_to, division, clock.now(), names())

    def overview_params(request: Request) -> tuple[date, date, str | None] | JSONResponse:
        """The signed-in user's date range and division, or the error to answer."""
        if pages.principal(pages.token(request)) is None:
            return JSONResponse({"error": {"code": "unauthenticated", "message": "需要登录"}}, status_code=401)
        q = request.query_params
        try:
            date_to = date.fromisoformat(q["to"]) if q.get("to") else ledger.local_date(clock.now())
            date_from = date.fromisoformat(q["from"]) if q.get("from") else date_to.replace(month=1, day=1)
        except ValueError:
            return JSONResponse({"error": {"code": "invalid", "field": "from", "message": "日期格式应为 YYYY-MM-DD"}},
                                status_code=422)
        if date_from > date_to:
            return JSONResponse({"error": {"code": "invalid", "field": "from", "message": "起始日期不能晚于截止日期"}},
                                status_code=422)
        division = q.get("division") or None
        if division:
            try:
                divisions.name(division)
            except divisions.UnknownDivision:
                return JSONResponse({"error": {"code": "invalid", "field": "division", "message": "未知的行政区划代码"}},
                                    status_code=422)
        return date_from, date_to, division

    @router.get("/ui/data/overview")
    async def overview_data(request: Request):
        params = overview_params(request)
        if isinstance(params, JSONResponse):
            return params
        return JSONResponse(await asyncio.to_thread(overview, *params), headers=page_headers())

    @router.get("/ui/data/overview.csv")
    async def overview_csv_data(request: Request):
        params = overview_params(request)
        if isinstance(params, JSONResponse):
            return params
        name = f"cases_{params[0]}_{params[1]}.csv"
        return StreamingResponse(overview_csv(*params), media_type="text/csv; charset=utf-8",
                                 headers=page_headers({"Content-Disposition": f'attachment; filename="{name}"'}))

    # --- same-origin proxy to the node's services ---

    @router.api_route("/ui/api/{service}/{path:path}", methods=["GET", "POST", "PUT"])
    async def proxy(service: str, path: str, request: Request):
        if service not in pages.services or not path.startswith("api/v1/") or ".." in path:
            return JSONResponse({"error": {"code": "not_found", "message": "无此服务接口 (no such service API)"}},
                                status_code=404)
        token = pages.token(request)
        if token is None:
            return JSONResponse({"error": {"code": "unauthenticated", "message": "需要登录"}}, status_code=401)
        if request.method != "GET" and "authorization" not in request.headers and not pages.same_origin(request):
            return JSONResponse({"error": {"code": "forbidden", "message": "请求来源不是本站"}}, status_code=403)
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARD_REQUEST}
        headers["Authorization"] = f"Bearer {token}"
        try:
            r = await pages.client.request(request.method, f"{pages.services[service]}/{path}",
                                           params=list(request.query_params.multi_items()), headers=headers,
                                           content=await request.body() if request.method != "GET" else None)
        except httpx.HTTPError:
            return JSONResponse({"error": {"code": "unavailable", "message": f"本节点的{service}服务暂时无法访问"}},
                                status_code=502)
        out = {k: v for k, v in r.headers.items() if k.lower() in _FORWARD_RESPONSE}
        out["Cache-Control"] = "no-store"
        return Response(r.content, status_code=r.status_code, headers=out)

    return router
