"""gRPC plumbing: servers with health and reflection, caller identity, trace context, deadlines."""
from __future__ import annotations

import contextlib
from typing import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared import telemetry

DEFAULT_DEADLINE_S = 5.0
AGENCY_KEY, USER_KEY, ROLE_KEY = "x-lianfang-agency", "x-lianfang-user", "x-lianfang-role"


async def start_server(addr: str, services: Iterable[tuple[object, object, str]]) -> grpc.aio.Server:
    """services: (add_XServicer_to_server, servicer, full service name). Adds health and reflection."""
    server = grpc.aio.server()
    health_servicer = health.aio.HealthServicer()
    names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(names, server)
    if server.add_insecure_port(addr) == 0:
        raise OSError(f"gRPC cannot bind {addr}")
    await server.start()
    return server


def call_metadata(agency: str, user: str, role: str) -> list[tuple[str, str]]:
    """Who is calling (the node) and on whose behalf (the end user), plus the trace context."""
    return [(AGENCY_KEY, agency), (USER_KEY, user), (ROLE_KEY, role), *telemetry.grpc_metadata()]


def caller(context: grpc.aio.ServicerContext) -> dict[str, str]:
    md = dict(context.invocation_metadata() or ())
    return {"agency": md.get(AGENCY_KEY, ""), "user": md.get(USER_KEY, ""), "role": md.get(ROLE_KEY, "")}


@contextlib.contextmanager
def server_span(context: grpc.aio.ServicerContext, name: str):
    """A server span that continues the caller's trace (context from gRPC metadata)."""
    ctx = telemetry.extract(dict(context.invocation_metadata() or ()))
    with telemetry.tracer().start_as_current_span(name, context=ctx, kind=telemetry.trace.SpanKind.SERVER) as span:
        yield span


def channel(addr: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(addr)
