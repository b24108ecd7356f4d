"""OpenTelemetry set-up and context carriage across HTTP, NATS headers and gRPC metadata.

One petition's journey is one trace: the trace context is injected into the outbox row's headers when
the event is staged (so the relay keeps it), extracted by consumers, and sent as gRPC metadata."""
from __future__ import annotations

import functools
import os

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

_provider: TracerProvider | None = None


def setup(service: str, agency: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install a tracer provider once per process; spans go to `exporter` or, when
    OTEL_EXPORTER_OTLP_ENDPOINT is set and the OTLP exporter is installed, to the collector."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": f"lianfang-{service}",
                                                             "lianfang.agency": agency}))
        trace.set_tracer_provider(_provider)
        if exporter is None and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                exporter = OTLPSpanExporter()
            except ImportError:
                exporter = None
    if exporter is not None:
        _provider.add_span_processor(BatchSpanProcessor(exporter))
    return _provider


@functools.lru_cache(maxsize=None)
def tracer(name: str = "lianfang") -> trace.Tracer:
    """One tracer per name (get_tracer builds a new one on every call: a cost on every consumed event).
    Taken before setup() it is a proxy that follows the provider installed later."""
    return trace.get_tracer(name)


def inject() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(carrier: dict[str, str] | None) -> context.Context:
    return propagate.extract(carrier or {})


def grpc_metadata() -> list[tuple[str, str]]:
    return list(inject().items())
