"""Domain errors carry their HTTP status and gRPC code; they are mapped in one place (here)."""
from __future__ import annotations

import grpc


class LianfangError(Exception):
    http_status = 400
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    code = "bad_request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.field:
            err["field"] = self.field
        return {"error": err}


class Invalid(LianfangError):
    http_status, code = 422, "invalid"


class NotFound(LianfangError):
    http_status, grpc_code, code = 404, grpc.StatusCode.NOT_FOUND, "not_found"


class Forbidden(LianfangError):
    http_status, grpc_code, code = 403, grpc.StatusCode.PERMISSION_DENIED, "forbidden"


class Unauthenticated(LianfangError):
    http_status, grpc_code, code = 401, grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"


class Conflict(LianfangError):
    http_status, grpc_code, code = 409, grpc.StatusCode.FAILED_PRECONDITION, "conflict"


class TooMany(LianfangError):
    http_status, grpc_code, code = 429, grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited"


class Unavailable(LianfangError):
    """Another node this answer needs cannot be reached now; the caller may retry."""
    http_status, grpc_code, code = 503, grpc.StatusCode.UNAVAILABLE, "unavailable"


async def abort_grpc(context: grpc.aio.ServicerContext, err: LianfangError):
    await context.abort(err.grpc_code, err.message)
