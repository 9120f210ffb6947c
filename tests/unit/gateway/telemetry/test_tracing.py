"""Tracer providers from settings, and gen_ai span attributes (InMemorySpanExporter)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from cluster.config import TelemetrySettings
from cluster.engine import Usage
from cluster.errors import EngineUnavailable
from cluster.gateway.telemetry import (
    GatewayMetrics,
    RequestObserver,
    build_tracer_provider,
    tracer_from,
)
from cluster.gateway.telemetry.tracing import _otlp_exporter


def test_none_exporter_builds_nothing() -> None:
    assert build_tracer_provider(TelemetrySettings()) is None
    assert isinstance(tracer_from(None), trace.NoOpTracer)


@pytest.mark.parametrize("kind", ["console", "otlp"])
def test_configured_exporters_build_a_private_provider(kind: str) -> None:
    settings = TelemetrySettings(traces_exporter=kind, otlp_endpoint="http://127.0.0.1:4318")  # type: ignore[arg-type]
    provider = build_tracer_provider(settings)
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "modelyard"
    assert trace.get_tracer_provider() is not provider
    provider.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
    ],
)
def test_otlp_endpoint(endpoint: str, expected: str) -> None:
    exporter = _otlp_exporter(endpoint)
    assert exporter._endpoint == expected  # type: ignore[attr-defined]
    exporter.shutdown()


def _observer() -> tuple[RequestObserver, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = build_tracer_provider(TelemetrySettings(), exporter=exporter)
    return RequestObserver(GatewayMetrics(), tracer_from(provider)), exporter


def test_success_span_has_gen_ai_attributes() -> None:
    obs, exporter = _observer()
    observation = obs.start(
        "chat",
        requested_model="alias-name",
        n=2,
        stream=True,
        max_tokens=50,
        temperature=0.5,
        top_p=None,
    )
    observation.bind("org/model", engine="sim", simulated=True)
    observation.first_token()
    observation.succeed(
        response_id="chatcmpl-abc",
        finish_reasons=["stop", "length"],
        usage=Usage(prompt_tokens=12, completion_tokens=30, cached_tokens=8),
    )
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "chat alias-name"
    assert attrs["gen_ai.system"] == "modelyard"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "alias-name"
    assert attrs["gen_ai.response.model"] == "org/model"
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert "gen_ai.request.top_p" not in attrs
    assert attrs["gen_ai.request.choice.count"] == 2
    assert attrs["gen_ai.response.id"] == "chatcmpl-abc"
    assert tuple(attrs["gen_ai.response.finish_reasons"]) == ("stop", "length")  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 30
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 8
    assert attrs["modelyard.simulated"] is True
    assert "gen_ai.response.time_to_first_chunk" in attrs
    assert span.status.status_code == StatusCode.OK


def test_failure_span_is_error_with_type() -> None:
    obs, exporter = _observer()
    observation = obs.start(
        "completions",
        requested_model="m",
        n=1,
        stream=False,
        max_tokens=None,
        temperature=None,
        top_p=0.9,
    )
    observation.fail(EngineUnavailable("replica down"))
    (span,) = exporter.get_finished_spans()
    assert span.name == "text_completion m"
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "engine_unavailable"
