"""HTTP plumbing shared by every service's FastAPI app: authentication, error shapes, size limits,
rate limits. Roles: 登记员 clerk, 承办人 handler, 督查员 supervisor, 领导 leader, 审计员 auditor, 管理员 admin."""
from __future__ import annotations

import hmac
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from shared import metrics, telemetry

from shared.config import NodeConfig
from shared.crypto import token_hash
from shared.errors import LianfangError, TooMany, Unauthenticated

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024
DRAIN_BYTES = 4 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413 (see BodyLimit)


@dataclass(frozen=True)
class Principal:
    """An authenticated user, bound to one agency (the node's)."""
    user: str
    role: str
    agency: str


def authenticate(cfg: NodeConfig, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise Unauthenticated("需要登录：缺少 Authorization: Bearer 令牌 (authentication required)")
    digest = token_hash(header[7:].strip())
    for u in cfg.users:
        if hmac.compare_digest(u.token_sha256, digest):
            return Principal(user=u.name, role=u.role, agency=cfg.agency)
    log.warning("rejected bearer token from %s", request.client.host if request.client else "?")
    raise Unauthenticated("令牌无效 (invalid token)")


def caller(cfg: NodeConfig):
    """The type of a route's authenticated caller: a parameter `who: User`, with `User = caller(cfg)`,
    answers 401 unless the request bears a valid token. The dependency is a coroutine: FastAPI runs a
    plain function on a worker thread, and that round trip cost more than the check (≈ 5 % of the desk's
    CPU under load, py-spy)."""
    async def principal(request: Request) -> Principal:
        return authenticate(cfg, request)
    return Annotated[Principal, Depends(principal)]


class RateLimiter:
    """Token bucket per client address; used on public endpoints (查询码 guessing is throttled)."""

    def __init__(self, per_minute: int, burst: int):
        self.rate, self.burst = per_minute / 60.0, burst
        self._buckets: dict[str, tuple[float, float]] = defaultdict(lambda: (float(burst), time.monotonic()))

    def check(self, client: str) -> None:
        tokens, last = self._buckets[client]
        now = time.monotonic()
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            raise TooMany("请求过于频繁，请稍后再试 (too many requests)")
        self._buckets[client] = (tokens - 1, now)


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _nul(field: str) -> JSONResponse:
    return JSONResponse({"error": {"code": "invalid", "field": field, "message":
                                   f"{field}: 不能包含 NUL 字符 (NUL characters are not allowed)"}}, status_code=422)


def _too_large() -> JSONResponse:
    return JSONResponse({"error": {"code": "too_large", "message": f"请求体过大，上限 {MAX_BODY_BYTES} 字节 "
                                   f"(body larger than {MAX_BODY_BYTES} bytes)"}}, status_code=413)


class _ClientGone(Exception):
    pass


class BodyLimit:
    """Pure ASGI middleware: refuses, before any handler runs, a body over MAX_BODY_BYTES (413), one that
    is not UTF-8, and NUL in the path, the query or the body (422). The body it read is handed on to the
    app as it came. (Starlette's BaseHTTPMiddleware ran each request in a task of its own, behind
    memory streams: about a sixth of a registration's CPU at the desk.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            refusal, body = await self._check(scope, receive)
        except _ClientGone:
            return  # before its body was whole: nothing is done and there is no one to answer
        if refusal is not None:
            return await refusal(scope, receive, send)
        handed = False

        async def replay():
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # (after the body: the client's disconnect)

        await self.app(scope, replay, send)

    @staticmethod
    async def _check(scope, receive) -> tuple[JSONResponse | None, bytes]:
        # NUL is valid in URLs and JSON strings but in no stored text (PostgreSQL refuses it): refuse it at the door.
        if "\x00" in scope.get("path", ""):
            return _nul("path"), b""
        if b"%00" in scope.get("query_string", b""):
            return _nul("query"), b""
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > DRAIN_BYTES:
            return _too_large(), b""  # not worth reading: the connection closes after the answer
        too_large = declared.isdigit() and int(declared) > MAX_BODY_BYTES
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk, more = message.get("body", b""), message.get("more_body", False)
            size += len(chunk)
            too_large = too_large or size > MAX_BODY_BYTES
            if not too_large:
                chunks.append(chunk)
            elif size > DRAIN_BYTES:
                break  # past this the rest is not read: the connection closes after the answer
        if too_large:
            # the rest was read (and dropped) first: answering while the client still sends makes the
            # closing socket reset the connection, and the client sees an error instead of this answer
            return _too_large(), b""
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            return JSONResponse({"error": {"code": "invalid", "field": "body",
                                           "message": f"请求体不是有效的 UTF-8 (body is not valid UTF-8 at byte {e.start})"}},
                                status_code=422), b""
        form = headers.get(b"content-type", b"").startswith(b"application/x-www-form-urlencoded")
        if b"\\u0000" in body or (form and b"%00" in body):  # JSON escape, or form encoding (Open311)
            return _nul("body"), b""
        return None, body


class TraceAndCount:
    """Pure ASGI middleware: a server span continuing the caller's trace (W3C traceparent header),
    and the request counter of /metrics."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        name = f"HTTP {scope['method']} {scope['path']}"
        with telemetry.tracer().start_as_current_span(name, context=telemetry.extract(headers),
                                                      kind=telemetry.trace.SpanKind.SERVER) as span:
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                span.set_attribute("http.status_code", status["code"])
                route = scope.get("route")
                metrics.inc("lianfang_http_requests_total", "HTTP requests by route and status",
                            method=scope["method"], route=getattr(route, "path", "unmatched"), status=str(status["code"]))


def install(app: FastAPI) -> None:
    """Error handlers, limits, tracing and metrics every Lianfang app has."""
    app.add_middleware(BodyLimit)
    app.add_middleware(TraceAndCount)

    @app.get("/metrics", include_in_schema=False)
    async def _metrics():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(LianfangError)
    async def _domain(request: Request, e: LianfangError):
        if e.http_status in (401, 403):  # refused access is on record (never with the token or personal data)
            log.warning("access refused: %s %s → %d from %s", request.method, request.url.path, e.http_status,
                        request.client.host if request.client else "?")
        return JSONResponse(e.body(), status_code=e.http_status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError):
        fields = []
        for err in e.errors():
            name = _field_name(tuple(err.get("loc", ())))
            msg = err.get("msg", "invalid")
            if err.get("type") == "json_invalid":
                name, msg = "body", "请求体不是有效的 JSON (body is not valid JSON)"
            elif err.get("type") == "missing":
                msg = f"缺少必填字段 {name} (field required)"
            fields.append({"field": name, "message": msg.removeprefix("Value error, ")})
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        return JSONResponse({"error": {"code": "invalid", "field": first["field"],
                                       "message": f"{first['field']}: {first['message']}", "fields": fields}},
                            status_code=422)
