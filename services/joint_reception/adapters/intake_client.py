"""The centre registers a walk-in visit through its own node's intake (POST /api/v1/petitions), on behalf
of the clerk at the front desk (their bearer token is forwarded): intake stays the one way a case is
created, and the visit is one case, not a second store."""
from __future__ import annotations

import grpc
import httpx

from shared import telemetry
from shared.errors import Conflict, Forbidden, Invalid, LianfangError, Unauthenticated


class IntakeUnavailable(LianfangError):
    http_status, grpc_code, code = 503, grpc.StatusCode.UNAVAILABLE, "unavailable"


async def register_visit(intake_addr: str, authorization: str, idempotency_key: str, petition: dict,
                         timeout: float = 10.0) -> dict:
    """201 body of intake ({case_id, query_code, status, repeat_of}); intake's refusal is re-raised with
    the field it names (prefixed `petition.`). The same key always yields the same case."""
    headers = {"Authorization": authorization, "Idempotency-Key": idempotency_key, **telemetry.inject()}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.post(f"http://{intake_addr}/api/v1/petitions", json=petition, headers=headers)
    except httpx.HTTPError as e:
        raise IntakeUnavailable(f"登记服务暂不可用，请稍后重试 (intake unreachable: {e})") from None
    if r.status_code in (200, 201):
        return r.json()
    try:
        err = r.json().get("error", {})
    except ValueError:
        err = {}
    message, field = err.get("message") or r.text[:300], err.get("field")
    field = f"petition.{field}" if field and field != "body" else "petition"
    if r.status_code == 422:
        raise Invalid(message, field)
    if r.status_code == 401:
        raise Unauthenticated(message)
    if r.status_code == 403:
        raise Forbidden(message)
    if r.status_code == 409:
        raise Conflict(message, field)
    raise IntakeUnavailable(f"登记服务返回 {r.status_code}：{message} (intake failed)")
