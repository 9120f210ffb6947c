"""Gateway metrics (own Prometheus registry) and request tracing (gen_ai conventions)."""

from cluster.gateway.telemetry.metrics import GatewayMetrics
from cluster.gateway.telemetry.observer import Observation, RequestObserver
from cluster.gateway.telemetry.tracing import build_tracer_provider, tracer_from

__all__ = [
    "GatewayMetrics",
    "Observation",
    "RequestObserver",
    "build_tracer_provider",
    "tracer_from",
]
