"""Placement plans for the catalog's models and the rules that reject impossible layouts."""

from __future__ import annotations

import pytest

from cluster.config import ModelDeployment, Parallelism, RaySettings, ServedModel
from cluster.config.catalog import load_builtin_catalog
from cluster.errors import ConfigError
from cluster.placement import layout_violations, plan_for, plan_placement, rank_bundles

CATALOG = load_builtin_catalog()


@pytest.mark.parametrize(
    ("model_id", "gpus", "strategy", "nodes", "gpus_by_node"),
    [
        ("mistralai/devstral-small", 2, "STRICT_PACK", 1, [2]),
        ("minimax/minimax-m1", 16, "PACK", 2, [8, 8]),
        ("qwen/qwen3-coder-flash", 2, "STRICT_PACK", 1, [2]),
        ("casperhansen/mistral-small-24b-instruct-2501-awq", 1, "STRICT_PACK", 1, [1]),
    ],
)
def test_catalog_models_on_8_gpu_nodes(
    model_id: str, gpus: int, strategy: str, nodes: int, gpus_by_node: list[int]
) -> None:
    spec = CATALOG.find(model_id)
    assert spec is not None
    served = ServedModel(spec=spec, deployment=ModelDeployment(id=model_id))
    plan = plan_for(served, RaySettings(gpus_per_node=8))
    assert plan.bundles[0] == {"CPU": 1.0}
    assert plan.bundles[1:] == [{"GPU": 1.0}] * gpus
    assert plan.gpu_bundles == list(range(1, gpus + 1))
    assert plan.gpus == gpus
    assert plan.strategy == strategy
    assert plan.nodes == nodes
    assert plan.gpus_by_node == gpus_by_node


def test_minimax_layout_is_two_stages_of_eight() -> None:
    plan = plan_placement(Parallelism(tensor=8, pipeline=2, expert=True), gpus_per_node=8)
    assert plan.stage_gpus == [8, 8]
    assert plan.node_stages == [[0], [1]]
    assert plan.expert
    assert [plan.stage_of_rank(r) for r in (0, 7, 8, 15)] == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("tensor", "pipeline", "gpus_per_node", "strategy", "node_stages"),
    [
        (1, 1, 1, "STRICT_PACK", [[0]]),
        (4, 2, 8, "STRICT_PACK", [[0, 1]]),  # 8 GPUs fit one node: no node crossing
        (2, 8, 8, "PACK", [[0, 1, 2, 3], [4, 5, 6, 7]]),
        (4, 3, 8, "PACK", [[0, 1], [2]]),  # last node half used
        (1, 3, 1, "PACK", [[0], [1], [2]]),
        (8, 4, 8, "PACK", [[0], [1], [2], [3]]),
    ],
)
def test_strategy_and_nodes(
    tensor: int, pipeline: int, gpus_per_node: int, strategy: str, node_stages: list[list[int]]
) -> None:
    plan = plan_placement(
        Parallelism(tensor=tensor, pipeline=pipeline), gpus_per_node=gpus_per_node
    )
    assert plan.strategy == strategy
    assert plan.node_stages == node_stages
    assert plan.nodes == len(node_stages)
    assert sum(plan.gpus_by_node) == tensor * pipeline
    assert all(g <= gpus_per_node for g in plan.gpus_by_node)


@pytest.mark.parametrize(
    ("tensor", "pipeline", "gpus_per_node", "needle"),
    [
        (16, 1, 8, "tensor parallel size 16 exceeds ray.gpus_per_node 8"),
        (16, 2, 8, "exceeds ray.gpus_per_node"),
        (3, 4, 8, "must divide ray.gpus_per_node 8"),  # 12 GPUs: packing would split a group
        (2, 1, 1, "exceeds ray.gpus_per_node 1"),
    ],
)
def test_impossible_layouts_name_the_field(
    tensor: int, pipeline: int, gpus_per_node: int, needle: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_placement(
            Parallelism(tensor=tensor, pipeline=pipeline),
            gpus_per_node=gpus_per_node,
            field="catalog[x].parallelism",
        )
    assert caught.value.param == "catalog[x].parallelism.tensor"
    assert caught.value.message.startswith("catalog[x].parallelism.tensor:")
    assert needle in caught.value.message


def test_tensor_not_dividing_node_is_fine_on_one_node() -> None:
    plan = plan_placement(Parallelism(tensor=3, pipeline=2), gpus_per_node=8)
    assert plan.strategy == "STRICT_PACK"
    assert plan.gpus == 6


def test_cpu_only_plan_reserves_no_gpu() -> None:
    plan = plan_placement(
        Parallelism(tensor=8, pipeline=2), gpus_per_node=8, reserve_gpus=False, replica_cpus=0.5
    )
    assert plan.bundles == [{"CPU": 0.5}]
    assert plan.gpus == 0
    assert plan.gpu_bundles == []
    assert plan.strategy == "STRICT_PACK"


def test_cpu_only_plan_still_rejects_tp_wider_than_a_node() -> None:
    with pytest.raises(ConfigError):
        plan_placement(Parallelism(tensor=16), gpus_per_node=8, reserve_gpus=False)


# Seen on a 3-node cluster (head + two 8-GPU workers): PACK keeps counts, not bundle order.
INTERLEAVED = ["b"] + ["a"] * 7 + ["b", "a"] + ["b"] * 7


@pytest.mark.parametrize(
    ("bundle_nodes", "problems"),
    [
        (["a"] + ["a"] * 8 + ["b"] * 8, []),
        (["b"] + ["a"] * 8 + ["b"] * 8, []),  # the actor's CPU bundle may sit anywhere
        (INTERLEAVED, []),
        (
            ["a"] + ["a"] * 6 + ["b"] * 10,
            [
                "node a holds 6 GPU ranks, not a multiple of tensor=8: "
                "a tensor-parallel group spans nodes",
                "node b holds 10 GPU ranks, not a multiple of tensor=8: "
                "a tensor-parallel group spans nodes",
            ],
        ),
        (
            ["a"] + ["a"] * 8 + ["b"] * 4 + ["c"] * 4,
            [
                "node b holds 4 GPU ranks, not a multiple of tensor=8: "
                "a tensor-parallel group spans nodes",
                "node c holds 4 GPU ranks, not a multiple of tensor=8: "
                "a tensor-parallel group spans nodes",
                "GPU ranks span 3 nodes, planned 2",
            ],
        ),
        (["a"] * 3, ["expected 17 bundles, got 3"]),
    ],
)
def test_layout_violations(bundle_nodes: list[str], problems: list[str]) -> None:
    plan = plan_placement(Parallelism(tensor=8, pipeline=2), gpus_per_node=8)
    assert layout_violations(plan, bundle_nodes) == problems


def test_rank_bundles_groups_ranks_by_node() -> None:
    plan = plan_placement(Parallelism(tensor=8, pipeline=2), gpus_per_node=8)
    order = rank_bundles(plan, INTERLEAVED)
    assert order == [1, 2, 3, 4, 5, 6, 7, 9, 8, 10, 11, 12, 13, 14, 15, 16]
    # Each stage (8 consecutive ranks) sits on one node.
    for stage in range(2):
        assert len({INTERLEAVED[i] for i in order[stage * 8 : (stage + 1) * 8]}) == 1
