"""Gateway metrics (own Prometheus registry) and request tracing (gen_ai conventions)."""

from cluster.telemetry.metrics import GatewayMetrics
from cluster.telemetry.observer import Observation, RequestObserver
from cluster.telemetry.tracing import build_tracer_provider, tracer_from

__all__ = [
    "GatewayMetrics",
    "Observation",
    "RequestObserver",
    "build_tracer_provider",
    "tracer_from",
]
