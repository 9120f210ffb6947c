"""Placement plan: the resource bundles one model replica reserves, derived from its parallelism.

Pure (no Ray import): `deployments.placement` turns a `PlacementPlan` into Ray Serve's
`placement_group_bundles` / `placement_group_strategy` deployment options.

Bundle layout of one replica (Ray Serve schedules the replica actor in bundle 0):

    index 0                 {"CPU": replica_cpus}     the replica actor (engine driver)
    index 1 + r             {"GPU": 1}                GPU rank r, r = 0 … tensor x pipeline - 1

Rank r belongs to pipeline stage `r // tensor` with tensor-parallel rank `r % tensor`, so the
GPU ranks are the contiguous bundle indices `1 … tensor x pipeline` (`PlacementPlan.gpu_bundles`).
vLLM's Ray executor, started inside the replica, takes "the first world_size bundles that
have a GPU" of the current placement group as its workers in that order (the CPU bundle 0 is
skipped because it has no GPU; `VLLM_RAY_BUNDLE_INDICES` can name them explicitly — use
`PlacementPlan.gpu_bundles`). One GPU per bundle is also what vLLM requires.

Strategy (why):
- tensor x pipeline ≤ gpus_per_node → `STRICT_PACK`: the whole replica on one node, so
  tensor-parallel all-reduces and pipeline sends stay on NVLink.
- otherwise the pipeline stages must span nodes → `PACK`: Ray fills a node before opening
  the next. Each stage's TP group must fit one node (tensor ≤ gpus_per_node), and the
  node size must be a whole number of stages (gpus_per_node % tensor == 0) so that packing
  node after node never cuts a TP group in two. Only pipeline traffic (one activation tensor
  per micro-batch) then crosses nodes.

Nodes needed = ceil(pipeline / stages_per_node) with stages_per_node = gpus_per_node // tensor.
Example: MiniMax-M1, TP 8 x PP 2 on 8-GPU nodes → 16 GPU bundles, PACK, 2 nodes, 8 per node.

`PACK` is best effort: on a cluster whose nodes are partly taken, Ray may place a replica
differently; `layout_violations` checks an actual placement against the plan.
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


def layout_violations(plan: PlacementPlan, bundle_nodes: Sequence[str]) -> list[str]:
    """Check an actual placement (node id of each bundle, by bundle index) against the plan.

    Returns human-readable problems; empty means every TP group sits on one node and the
    replica uses no more nodes than planned.
    """
    if len(bundle_nodes) != len(plan.bundles):
        return [f"expected {len(plan.bundles)} bundles, got {len(bundle_nodes)}"]
    problems = []
    for stage in range(len(plan.stage_gpus)):
        ranks = range(stage * plan.tensor, (stage + 1) * plan.tensor)
        nodes = {bundle_nodes[1 + r] for r in ranks}
        if len(nodes) > 1:
            problems.append(f"stage {stage}: tensor-parallel group spans {len(nodes)} nodes")
    used = {bundle_nodes[i] for i in plan.gpu_bundles}
    if len(used) > plan.nodes:
        problems.append(f"GPU ranks span {len(used)} nodes, planned {plan.nodes}")
    return problems
