"""`GatewayMetrics`: the gateway's Prometheus series, in a registry it owns.

Every instance builds its own `CollectorRegistry`, so two gateways in one process (tests,
a replica restarted in place) never collide and nothing touches prometheus_client's global
default registry.

Series (all prefixed `modelyard_`):
- `requests_total{model,endpoint,status}` — status is the HTTP status the request ended
  with ("200", "400", …; "499" when the client went away);
- `errors_total{model,code}` — the error's OpenAI `code` (or type when it has none);
- `time_to_first_token_seconds{model}` — from accepting the request to the first chunk;
- `request_duration_seconds{model,endpoint}` — from accepting to the last byte;
- `prompt_tokens_total`, `completion_tokens_total`, `cached_tokens_total` `{model}`;
- `cost_total{model,currency}` — what completed requests were billed (`usage.cost`), for
  dashboards; the ledger holds the exact amounts;
- `pending_requests{model}` — requests resolved to a model and still waiting for their
  first token: the gateway's queue per model, one of the autoscaler's signals;
- the fleet: every model replica's load and each model's replica counts
  (`replica_*`, `desired_replicas`, `replicas`; `cluster.gateway.telemetry.fleet`), from
  the snapshot `fleet.refresh(source)` reads before a scrape.

`model` is the served model's public id, or "unknown" for names that did not resolve (the
label never carries a client-chosen string, which would make the series unbounded).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cluster.gateway.telemetry.fleet import FleetCollector

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
UNKNOWN_MODEL = "unknown"


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, namespace: str = "modelyard") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ns, reg = namespace, self.registry

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, namespace=ns, registry=reg)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(name, doc, labels, namespace=ns, registry=reg, buckets=buckets)

        self.requests = counter(
            "requests", "Requests by final status", ["model", "endpoint", "status"]
        )
        self.errors = counter("errors", "Failed requests by error code", ["model", "code"])
        self.ttft = histogram(
            "time_to_first_token_seconds",
            "Seconds from accepting a request to its first chunk",
            ["model"],
            TTFT_BUCKETS,
        )
        self.duration = histogram(
            "request_duration_seconds",
            "Seconds from accepting a request to its end",
            ["model", "endpoint"],
            DURATION_BUCKETS,
        )
        self.prompt_tokens = counter("prompt_tokens", "Prompt tokens served", ["model"])
        self.completion_tokens = counter(
            "completion_tokens", "Completion tokens generated", ["model"]
        )
        self.pending = Gauge(
            "pending_requests",
            "Requests resolved to a model and waiting for their first token",
            ["model"],
            namespace=ns,
            registry=reg,
        )
        self.cached_tokens = counter(
            "cached_tokens", "Prompt tokens read from the prefix cache", ["model"]
        )
        self.cost = counter(
            "cost", "Billed cost of completed requests (the ledger is exact)", ["model", "currency"]
        )
        self.fleet = FleetCollector(ns)
        reg.register(self.fleet)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def sample(self, name: str, labels: dict[str, str]) -> float:
        """One sample's current value (0.0 if absent), e.g. ('modelyard_requests_total', …)."""
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value
