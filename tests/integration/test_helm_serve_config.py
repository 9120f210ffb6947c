"""What the Helm chart renders runs on Ray Serve: the rendered serveConfigV2 deployed by
Serve's controller (as KubeRay submits it) on a local Ray cluster whose nodes are the
rendered RayCluster's pods (their rayStartParams and environment), simulated models only.

The cluster runs in a subprocess (`helm_serve_config.py`) with its own RAY_TMPDIR, so it
shares nothing with the session cluster of the other integration tests. About 30 s.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster.config.catalog import load_builtin_catalog
from cluster.config.loader import parse_config
from cluster.placement import layout_violations, plan_for
from deployments.placement import ReplicaPlacement
from tests.integration.cluster_script import run_cluster_script
from tests.integration.helm_serve_config import MODELS

pytestmark = pytest.mark.integration

TIMEOUT_S = 300


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_cluster_script(
        "tests.integration.helm_serve_config", prefix="my-helm-", timeout_s=TIMEOUT_S
    )


def test_application_from_serve_config_runs(report: dict[str, Any]) -> None:
    assert report["app"]["status"] == "RUNNING", report["app"]
    assert report["app"]["deployments"] == {
        "gateway": {"RUNNING": 1},
        "model-minimax-minimax-m1": {"RUNNING": 1},
        "model-qwen-qwen3-coder-flash": {"RUNNING": 1},
    }


def test_gateway_replica_runs_on_a_gateway_pod(report: dict[str, Any]) -> None:
    """The serveConfigV2 override (custom resource modelyard_gateway) pins it there."""
    assert report["gateway_nodes"]
    assert set(report["gateway_nodes"]) <= set(report["nodes"]["gateway"])


def test_model_replicas_are_placed_as_planned_on_the_worker_pods(report: dict[str, Any]) -> None:
    config = parse_config({"ray": {"gpus_per_node": 8}, "models": MODELS})
    served = {m.deployment_name: m for m in config.served_models(load_builtin_catalog())}
    workers = set(report["nodes"]["cpu-sim"])
    assert set(report["placements"]) == set(served)
    for name, groups in report["placements"].items():
        plan = plan_for(served[name], config.ray)
        assert plan.gpus > 0
        (group,) = [ReplicaPlacement.model_validate(g) for g in groups]
        assert group.state == "CREATED"
        gpu_nodes = set(group.gpus_by_node)
        assert gpu_nodes <= workers, "GPU bundles outside the worker group"
        assert len(gpu_nodes) == plan.nodes, name
        assert layout_violations(plan, group.bundle_nodes) == []


def test_gateway_serves_the_models_of_the_cluster_file(report: dict[str, Any]) -> None:
    assert report["models"] == ["minimax/minimax-m1", "qwen/qwen3-coder-flash"]
    assert report["chat"]["status"] == 200
    usage = report["chat"]["usage"]
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
