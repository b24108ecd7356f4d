"""gRPC plumbing: servers with health and reflection, caller identity, trace context, deadlines.

Identity on a call has two parts. The calling *node* is the agency named by its client certificate
(mutual TLS, shared/certs.py): a server with TLS admits only certificates from the federation CA,
and refuses a call whose `x-lianfang-agency` metadata names another agency than the certificate
does (PERMISSION_DENIED) — a node cannot speak for another. The *end user* on whose behalf the node
calls (`x-lianfang-user`, `x-lianfang-role`) travels in metadata, so a call runs on the originating
user's permissions, not the service's. Without TLS (old configs) the metadata alone names the node."""
from __future__ import annotations

import contextlib
import functools
import inspect
from pathlib import Path
from typing import Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared import telemetry
from shared.certs import agency_of_pem
from shared.config import TlsConfig

DEFAULT_DEADLINE_S = 5.0
AGENCY_KEY, USER_KEY, ROLE_KEY = "x-lianfang-agency", "x-lianfang-user", "x-lianfang-role"


async def start_server(addr: str, services: Iterable[tuple[object, object, str]],
                       tls: TlsConfig | None = None) -> grpc.aio.Server:
    """services: (add_XServicer_to_server, servicer, full service name). Adds health and reflection.
    With `tls`, the server requires a client certificate from the federation CA on every call."""
    server = grpc.aio.server(interceptors=[_CertificateIdentity()] if tls else None)
    health_servicer = health.aio.HealthServicer()
    names = [health.SERVICE_NAME, reflection.SERVICE_NAME]
    for add, servicer, name in services:
        add(servicer, server)
        names.append(name)
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(names, server)
    bound = server.add_secure_port(addr, _server_credentials(tls)) if tls else server.add_insecure_port(addr)
    if bound == 0:
        raise OSError(f"gRPC cannot bind {addr}")
    await server.start()
    return server


def call_metadata(agency: str, user: str, role: str) -> list[tuple[str, str]]:
    """Who is calling (the node) and on whose behalf (the end user), plus the trace context."""
    return [(AGENCY_KEY, agency), (USER_KEY, user), (ROLE_KEY, role), *telemetry.grpc_metadata()]


def caller(context: grpc.aio.ServicerContext) -> dict[str, str]:
    """The calling agency (from its certificate when the server has TLS) and the end user it acts for."""
    md = dict(context.invocation_metadata() or ())
    agency = md.get(AGENCY_KEY, "")
    if _is_tls(context):
        agency = peer_agency(context) or ""  # the metadata was checked against it on admission
    return {"agency": agency, "user": md.get(USER_KEY, ""), "role": md.get(ROLE_KEY, "")}


def _is_tls(context: grpc.aio.ServicerContext) -> bool:
    return context.auth_context().get("transport_security_type") == [b"ssl"]


def peer_agency(context: grpc.aio.ServicerContext) -> str | None:
    """The agency named by the peer's certificate (SAN URI lianfang://agency/<id>), if any."""
    pem = context.auth_context().get("x509_pem_cert")
    return agency_of_pem(pem[0]) if pem else None


class _CertificateIdentity(grpc.aio.ServerInterceptor):
    """Admits a call only from a certificate that names an agency, and only when the agency the call
    claims in its metadata (if it claims one) is that agency. Wraps every method, health and
    reflection included, so no servicer can forget the check."""

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None:
            return None
        kind = ("stream" if handler.request_streaming else "unary") + "_" + \
               ("stream" if handler.response_streaming else "unary")
        return handler._replace(**{kind: _admitted(getattr(handler, kind))})


async def _admit(context: grpc.aio.ServicerContext) -> None:
    agency = peer_agency(context)
    if not agency:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "client certificate names no agency")
    claimed = dict(context.invocation_metadata() or ()).get(AGENCY_KEY)
    if claimed is not None and claimed != agency:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                            f"certificate of {agency} may not call as {claimed}")


def _admitted(behavior):
    if inspect.isasyncgenfunction(behavior):
        async def streamed(request, context):
            await _admit(context)
            async for reply in behavior(request, context):
                yield reply
        return streamed

    async def answered(request, context):
        await _admit(context)
        result = behavior(request, context)
        return await result if inspect.isawaitable(result) else result
    return answered


@contextlib.contextmanager
def server_span(context: grpc.aio.ServicerContext, name: str):
    """A server span that continues the caller's trace (context from gRPC metadata)."""
    ctx = telemetry.extract(dict(context.invocation_metadata() or ()))
    with telemetry.tracer().start_as_current_span(name, context=ctx, kind=telemetry.trace.SpanKind.SERVER) as span:
        yield span


# Reconnect soon after a peer comes back (gRPC's default backoff grows to two minutes).
RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                     ("grpc.max_reconnect_backoff_ms", 2000)]


class Channels:
    """One long-lived channel per peer address for a service process: calls reuse its HTTP/2 connection
    and TLS session instead of a TCP and mutual-TLS handshake each; gRPC reconnects by itself after the
    peer restarts."""

    def __init__(self, tls: TlsConfig | None):
        self.tls = tls
        self._open: dict[str, grpc.aio.Channel] = {}

    def get(self, addr: str) -> grpc.aio.Channel:
        if addr not in self._open:
            creds = client_credentials(self.tls) if self.tls else None
            self._open[addr] = grpc.aio.secure_channel(addr, creds, options=RECONNECT_OPTIONS) if creds \
                else grpc.aio.insecure_channel(addr, options=RECONNECT_OPTIONS)
        return self._open[addr]

    async def close(self) -> None:
        channels, self._open = list(self._open.values()), {}
        for ch in channels:
            await ch.close()


def client_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """Trust the federation CA only, and present this node's certificate (also for sync channels)."""
    return _client_credentials(tls.ca, tls.cert, tls.key)


@functools.lru_cache(maxsize=16)
def _client_credentials(ca: Path, cert: Path, key: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes(), private_key=key.read_bytes(),
                                        certificate_chain=cert.read_bytes())


def _server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(tls.key.read_bytes(), tls.cert.read_bytes())],
                                       root_certificates=tls.ca.read_bytes(), require_client_auth=True)


def check_identity(tls: TlsConfig, agency: str) -> None:
    """Refuse to start a node whose certificate names another agency than its config."""
    named = agency_of_pem(tls.cert.read_bytes())
    if named != agency:
        raise SystemExit(f"{tls.cert}: certificate names agency {named!r}, the node config {agency!r}")
