"""Placement plan: the resource bundles one model replica reserves, derived from its parallelism.

Pure (no Ray import): `deployments.placement` turns a `PlacementPlan` into Ray Serve's
`placement_group_bundles` / `placement_group_strategy` deployment options.

Bundle layout of one replica (Ray Serve schedules the replica actor in bundle 0):

    index 0                 {"CPU": replica_cpus}     the replica actor (engine driver)
    index 1 … G             {"GPU": 1}                one per GPU rank, G = tensor x pipeline

The GPU bundles are indices `1 … G` (`PlacementPlan.gpu_bundles`); one GPU per bundle is
what vLLM's Ray executor requires. Which bundle becomes which rank is decided by where Ray
put the bundles, not by their index: `PACK` fills nodes but does NOT keep bundle order
(seen here: on two 8-GPU nodes bundles 1-7 and 9 landed on one node, 8 and 10-16 on the
other). vLLM's Ray executor (started inside the replica, it uses "the first G bundles that
have a GPU", or `VLLM_RAY_BUNDLE_INDICES`) re-ranks its workers so that the workers of one
node are adjacent, driver's node first. Rank r then belongs to pipeline stage `r // tensor`,
so a tensor-parallel group stays inside a node iff every node holds a multiple of `tensor`
GPU bundles. `rank_bundles(plan, bundle_nodes)` gives the same node-grouped order for an
actual placement (usable as `VLLM_RAY_BUNDLE_INDICES`), and `layout_violations` checks that
invariant.

Strategy (why):
- tensor x pipeline <= gpus_per_node -> `STRICT_PACK`: the whole replica on one node, so
  tensor-parallel all-reduces and pipeline sends stay on NVLink.
- otherwise the pipeline stages must span nodes -> `PACK`: Ray fills a node before opening
  the next. Each stage's TP group must fit one node (tensor <= gpus_per_node), and the
  node size must be a whole number of stages (gpus_per_node % tensor == 0) so that filling
  empty nodes gives each node whole TP groups. Only pipeline traffic (one activation tensor
  per micro-batch) then crosses nodes.

Nodes needed = ceil(pipeline / stages_per_node) with stages_per_node = gpus_per_node // tensor.
Example: MiniMax-M1, TP 8 x PP 2 on 8-GPU nodes -> 16 GPU bundles, PACK, 2 nodes, 8 per node.

`PACK` is best effort: on nodes that are partly taken Ray may split a replica 4 + 8 + 4;
`layout_violations` reports that (the model deployment logs it at replica start).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster.config.catalog import Parallelism
from cluster.config.settings import RaySettings, ServedModel
from cluster.errors import ConfigError

Strategy = Literal["STRICT_PACK", "PACK"]

#: CPUs reserved for the replica actor itself (bundle 0); Ray Serve's default for an actor.
DEFAULT_REPLICA_CPUS = 1.0


class PlacementPlan(BaseModel):
    """What one replica reserves and how Ray should place it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bundles: list[dict[str, float]] = Field(min_length=1)
    strategy: Strategy
    nodes: int = Field(ge=1, description="nodes one replica spans when placed as planned")
    tensor: int = Field(ge=1)
    pipeline: int = Field(ge=1)
    expert: bool = False
    # Stage s -> GPUs it uses (tensor each); empty for a CPU-only plan.
    stage_gpus: list[int] = Field(default_factory=list)
    # Node n (in packing order) -> pipeline stages it hosts; empty for a CPU-only plan.
    node_stages: list[list[int]] = Field(default_factory=list)

    @property
    def replica_cpus(self) -> float:
        return self.bundles[0].get("CPU", 0.0)

    @property
    def gpus(self) -> int:
        """GPUs one replica reserves (0 for a CPU-only plan)."""
        return sum(self.stage_gpus)

    @property
    def gpu_bundles(self) -> list[int]:
        """Bundle indices of GPU ranks 0 … gpus - 1, in rank order."""
        return list(range(1, 1 + self.gpus))

    @property
    def gpus_by_node(self) -> list[int]:
        """Expected GPU count on each node of the replica, in packing order."""
        return [sum(self.stage_gpus[s] for s in stages) for stages in self.node_stages]

    def stage_of_rank(self, rank: int) -> int:
        return rank // self.tensor


def plan_placement(
    parallelism: Parallelism,
    *,
    gpus_per_node: int,
    reserve_gpus: bool = True,
    replica_cpus: float = DEFAULT_REPLICA_CPUS,
    field: str = "parallelism",
) -> PlacementPlan:
    """Plan one replica's bundles; raise `ConfigError` naming `field.<name>` if it cannot fit.

    The node-fit rules are checked even for a CPU-only plan: they are facts about the model
    and the cluster's nodes, and a catalog entry that could never be placed is a config error.
    """
    tp, pp = parallelism.tensor, parallelism.pipeline
    if gpus_per_node < 1:
        raise ConfigError("ray.gpus_per_node: must be at least 1", param="ray.gpus_per_node")
    if replica_cpus < 0:
        raise ConfigError("replica_cpus must be >= 0")
    if tp > gpus_per_node:
        raise ConfigError(
            f"{field}.tensor: tensor parallel size {tp} exceeds ray.gpus_per_node "
            f"{gpus_per_node}; a tensor-parallel group must fit on one node "
            "(use pipeline parallelism to span nodes)",
            param=f"{field}.tensor",
        )
    spans_nodes = tp * pp > gpus_per_node
    if spans_nodes and gpus_per_node % tp != 0:
        raise ConfigError(
            f"{field}.tensor: with pipeline stages spanning nodes, tensor parallel size {tp} "
            f"must divide ray.gpus_per_node {gpus_per_node} so that no tensor-parallel group "
            "is split between two nodes",
            param=f"{field}.tensor",
        )

    head: dict[str, float] = {"CPU": float(replica_cpus)}
    strategy: Strategy = "PACK" if spans_nodes else "STRICT_PACK"
    if not reserve_gpus:
        return PlacementPlan(
            bundles=[head], strategy="STRICT_PACK", nodes=1, tensor=tp, pipeline=pp,
            expert=parallelism.expert,
        )  # fmt: skip

    stages_per_node = gpus_per_node // tp if spans_nodes else pp
    nodes = math.ceil(pp / stages_per_node)
    node_stages = [
        list(range(n * stages_per_node, min(pp, (n + 1) * stages_per_node))) for n in range(nodes)
    ]
    return PlacementPlan(
        bundles=[head] + [{"GPU": 1.0} for _ in range(tp * pp)],
        strategy=strategy,
        nodes=nodes,
        tensor=tp,
        pipeline=pp,
        expert=parallelism.expert,
        stage_gpus=[tp] * pp,
        node_stages=node_stages,
    )


def plan_for(
    model: ServedModel, ray: RaySettings, *, replica_cpus: float = DEFAULT_REPLICA_CPUS
) -> PlacementPlan:
    """The plan of one served model under the cluster's Ray settings."""
    return plan_placement(
        model.spec.parallelism,
        gpus_per_node=ray.gpus_per_node,
        reserve_gpus=model.deployment.reserve_gpus,
        replica_cpus=replica_cpus,
        field=f"catalog[{model.spec.id}].parallelism",
    )


def rank_bundles(plan: PlacementPlan, bundle_nodes: Sequence[str]) -> list[int]:
    """GPU bundle indices in rank order for an actual placement: grouped by node.

    `bundle_nodes[i]` is the node id of bundle i. Nodes are ordered by their lowest GPU
    bundle index, bundles within a node by index — the grouping vLLM's executor applies.
    """
    by_node: dict[str, list[int]] = {}
    for index in plan.gpu_bundles:
        by_node.setdefault(bundle_nodes[index], []).append(index)
    return [index for indices in by_node.values() for index in indices]


def layout_violations(plan: PlacementPlan, bundle_nodes: Sequence[str]) -> list[str]:
    """Check an actual placement (node id of each bundle, by bundle index) against the plan.

    Returns human-readable problems; empty means every node holds whole tensor-parallel
    groups (a multiple of `tensor` GPU bundles) and the replica uses no more nodes than
    planned.
    """
    if len(bundle_nodes) != len(plan.bundles):
        return [f"expected {len(plan.bundles)} bundles, got {len(bundle_nodes)}"]
    counts: dict[str, int] = {}
    for index in plan.gpu_bundles:
        counts[bundle_nodes[index]] = counts.get(bundle_nodes[index], 0) + 1
    problems = [
        f"node {node[:12]} holds {n} GPU ranks, not a multiple of tensor={plan.tensor}: "
        "a tensor-parallel group spans nodes"
        for node, n in counts.items()
        if n % plan.tensor
    ]
    if len(counts) > plan.nodes:
        problems.append(f"GPU ranks span {len(counts)} nodes, planned {plan.nodes}")
    return problems
