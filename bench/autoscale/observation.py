"""What every policy in the replay sees, and the one interface they implement.

`Observation` is the replay's view of one model deployment at one tick: replica counts
and the per-replica numbers a vLLM replica exports (`vllm:num_requests_running`,
`vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`), plus the gateway's pending
requests. A `ScalingPolicy` turns it into the replicas it wants (ready + starting);
`period_s` is how often its control loop runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: The `--policy` names of `modelyard bench autoscale` (plus `fixed:N`).
POLICY_NAMES = ("modelyard", "ray-default", "hpa", "kpa", "saturation")


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    running: int
    waiting: int
    kv_usage: float
    recent_ttft_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Observation:
    now: float
    ready: tuple[ReplicaLoad, ...]
    starting: int
    gateway_pending: int
    draining_ongoing: int = 0
    prompt_tokens_per_s: float = 0.0

    @property
    def ready_count(self) -> int:
        return len(self.ready)

    @property
    def capacity(self) -> int:
        return len(self.ready) + self.starting

    @property
    def ongoing(self) -> int:
        """Requests in the system: gateway pending + every replica's waiting and running."""
        on_replicas = sum(r.running + r.waiting for r in self.ready)
        return self.gateway_pending + on_replicas + self.draining_ongoing

    @property
    def waiting(self) -> int:
        return self.gateway_pending + sum(r.waiting for r in self.ready)

    @property
    def recent_ttft_s(self) -> float:
        values = [r.recent_ttft_s for r in self.ready if r.recent_ttft_s > 0]
        return sum(values) / len(values) if values else 0.0

    @property
    def mean_kv_usage(self) -> float:
        return sum(r.kv_usage for r in self.ready) / len(self.ready) if self.ready else 0.0


class ScalingPolicy(Protocol):
    name: str
    period_s: float

    def desired(self, obs: Observation) -> int:
        """Replicas wanted now (ready + starting), within the policy's own bounds."""
        ...
