"""Tracing: a `TracerProvider` built from `TelemetrySettings`, never installed globally.

`traces_exporter`: "none" (default) → no provider, a no-op tracer; "console" → spans
printed to stdout; "otlp" → OTLP over HTTP/protobuf to `otlp_endpoint` (a collector's base
URL such as http://collector:4318, or the full …/v1/traces URL). The provider is returned to
the caller, which passes its tracer down and shuts it down at exit — no global state.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from cluster.config.settings import TelemetrySettings

TRACER_NAME = "modelyard.gateway"
OTLP_TRACES_PATH = "/v1/traces"


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if endpoint is not None and not endpoint.rstrip("/").endswith(OTLP_TRACES_PATH):
        endpoint = endpoint.rstrip("/") + OTLP_TRACES_PATH
    return OTLPSpanExporter(endpoint=endpoint)


def build_tracer_provider(
    settings: TelemetrySettings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """A provider per the settings; `exporter` (tests: InMemorySpanExporter) overrides them."""
    resource = Resource.create({"service.name": settings.service_name})
    if exporter is not None:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider
    if settings.traces_exporter == "none":
        return None
    provider = TracerProvider(resource=resource)
    if settings.traces_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(settings.otlp_endpoint)))
    return provider


def tracer_from(provider: TracerProvider | None) -> trace.Tracer:
    return trace.NoOpTracer() if provider is None else provider.get_tracer(TRACER_NAME)
