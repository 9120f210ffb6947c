"""MiniMax-M1 (TP8 x PP2) placed on a simulated cluster of two 8-GPU nodes as planned.

The cluster runs in a subprocess (`multinode_placement.py`) with its own RAY_TMPDIR, so it
shares nothing with the session cluster of the other integration tests and cannot be found
by any other `ray.init()` on this machine.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster.placement import PlacementPlan, layout_violations
from tests.integration.cluster_script import run_cluster_script

pytestmark = pytest.mark.integration

TIMEOUT_S = 240


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_cluster_script(
        "tests.integration.multinode_placement", prefix="my-mn-", timeout_s=TIMEOUT_S
    )


def test_replica_reaches_running(report: dict[str, Any]) -> None:
    assert report["replica_states"] == {"RUNNING": 1}
    answer = report["answer"]
    assert answer["completion_tokens"] == 8
    assert answer["replica_id"].startswith("SERVE_REPLICA::multinode#model-minimax-minimax-m1#")


def test_placement_group_matches_plan(report: dict[str, Any]) -> None:
    plan = PlacementPlan.model_validate(report["plan"])
    assert plan.strategy == "PACK"
    assert plan.gpus == 16
    assert plan.nodes == 2
    [group] = report["placements"]
    assert group["state"] == "CREATED"
    assert group["strategy"] == plan.strategy
    assert group["bundles"] == plan.bundles
    gpu_nodes = [group["bundle_nodes"][i] for i in plan.gpu_bundles]
    per_node = {node: gpu_nodes.count(node) for node in set(gpu_nodes)}
    assert per_node == {node: 8 for node in report["worker_nodes"]}
    assert report["head_node"] not in gpu_nodes
    assert layout_violations(plan, group["bundle_nodes"]) == []
