"""Every modelyard_* series the Grafana dashboard queries is one the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cluster.gateway.telemetry import GatewayMetrics
from cluster.gateway.telemetry.fleet import FleetSnapshot, ModelReplicas, ReplicaStats

DASHBOARD = Path(__file__).resolve().parents[3] / "helm/modelyard/dashboards/modelyard.json"


def exported() -> set[str]:
    metrics = GatewayMetrics()
    metrics.requests.labels("m", "chat", "200").inc()
    metrics.ttft.labels("m").observe(0.1)
    metrics.prompt_tokens.labels("m").inc()
    metrics.cached_tokens.labels("m").inc()
    metrics.pending.labels("m").set(0)
    metrics.cost.labels("m", "RUB").inc(0.01)
    replica = ReplicaStats(
        model="m", replica="r", recent_ttft_s=0.1, prefix_cache_queries=2, prefix_cache_hits=1
    )
    metrics.fleet.update(
        FleetSnapshot(replicas=(replica,), models=(ModelReplicas(model="m", desired=1),))
    )
    text = metrics.render().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_dashboard_queries_only_exported_series() -> None:
    panels = json.loads(DASHBOARD.read_text("utf-8"))["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"modelyard_[a-z_]+", target["expr"])
    }
    assert {"modelyard_replica_requests_waiting", "modelyard_desired_replicas"} <= queried
    assert "modelyard_cost_total" in queried
    assert queried - exported() == set()
