"""Build the replay's pieces from names and run every requested policy.

The replica is one catalog model on one GPU kind, timed by the simulator's
`PerformanceModel` (deployments/engines/sim/timing.py) with vLLM's defaults for the
batch (`max_num_seqs` 256, `max_num_batched_tokens` 8192, 16-token blocks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.autoscale.clairvoyant import Clairvoyant
from bench.autoscale.fleet import ReplicaShape
from bench.autoscale.modelyard_policy import ModelyardPolicy
from bench.autoscale.observation import POLICY_NAMES, Observation, ScalingPolicy
from cluster.config.autoscaling import AutoscalingSettings
from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import GpuKind
from cluster.errors import ConfigError
from deployments.engines.sim.timing import PerformanceModel


def replica_shape(
    model: str, gpu: GpuKind, max_num_seqs: int = 256, budget_tokens: int = 2048
) -> ReplicaShape:
    spec = load_builtin_catalog().find(model)
    if spec is None:
        raise ConfigError(f"--model: {model!r} is not in the catalog")
    perf = PerformanceModel.for_gpu(spec, gpu)
    return ReplicaShape(perf, max_num_seqs, budget_tokens, perf.kv_capacity_blocks(16) * 16)


#: Share of a replica's prefill throughput the prompt target asks for (TTFT headroom).
PREFILL_UTILIZATION = 0.6
#: Share of the batch (`max_num_seqs`) the queue target asks for.
BATCH_UTILIZATION = 0.75


def prefill_tokens_per_s(shape: ReplicaShape) -> float:
    """Prefill throughput of one replica: one full chunk of the token budget per step (what
    a load test of one replica with long prompts measures)."""
    return shape.budget_tokens / shape.perf.prefill_time(shape.budget_tokens)


def modelyard_settings(
    shape: ReplicaShape, startup_s: float, ttft_slo_s: float = 2.0
) -> AutoscalingSettings:
    """modelyard's settings for this replica: the two targets from the replica's shape
    (`BATCH_UTILIZATION` of its batch, `PREFILL_UTILIZATION` of its prefill throughput),
    the TTFT guard at half the TTFT objective, every other constant at its documented
    default."""
    return AutoscalingSettings(
        target_ongoing_per_replica=BATCH_UTILIZATION * shape.max_num_seqs,
        target_prompt_tokens_per_s=PREFILL_UTILIZATION * prefill_tokens_per_s(shape),
        ttft_guard_s=ttft_slo_s / 2,
        startup_s=startup_s,
    )


class Fixed:
    """`fixed:N` — N replicas throughout (a yardstick, not an autoscaler)."""

    period_s = 60.0

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.name = f"fixed:{replicas}"

    def desired(self, obs: Observation) -> int:
        return self.replicas


def build_policy(
    name: str,
    *,
    min_replicas: int,
    max_replicas: int,
    settings: AutoscalingSettings | None = None,
    load_series: Sequence[tuple[float, float]] = (),
    startup_s: float = 180.0,
) -> ScalingPolicy:
    """One fresh policy by its `--policy` name (`fixed:N` and `clairvoyant:H` too; the
    latter reads `load_series`, the future included, and `startup_s`)."""
    bounds = {"min_replicas": min_replicas, "max_replicas": max_replicas}
    if name == "modelyard":
        base = settings or AutoscalingSettings()
        return ModelyardPolicy(base.model_copy(update=bounds))
    if name.startswith("fixed:"):
        try:
            return Fixed(int(name.removeprefix("fixed:")))
        except ValueError:
            raise ConfigError(f"--policy: {name!r}: fixed:N needs a whole number") from None
    if name.startswith("clairvoyant:"):
        try:
            utilisation = float(name.removeprefix("clairvoyant:"))
            return Clairvoyant(load_series, utilisation, startup_s, **bounds)
        except ValueError:
            raise ConfigError(f"--policy: {name!r}: clairvoyant:H needs H in (0, 2]") from None
    factories: dict[str, Callable[[], ScalingPolicy]] = {}
    if name == "ray-default":
        from bench.autoscale.baselines.ray_default import RayDefault

        factories[name] = lambda: RayDefault(**bounds)
    elif name == "hpa":
        from bench.autoscale.baselines.hpa import Hpa

        factories[name] = lambda: Hpa(**bounds)
    elif name == "kpa":
        from bench.autoscale.baselines.kpa import Kpa

        factories[name] = lambda: Kpa(**bounds)
    elif name == "saturation":
        from bench.autoscale.baselines.saturation import Saturation

        factories[name] = lambda: Saturation(**bounds)
    if name not in factories:
        raise ConfigError(f"--policy: unknown policy {name!r}; one of {', '.join(POLICY_NAMES)}")
    return factories[name]()
