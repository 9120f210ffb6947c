"""`ray-default`: Ray Serve 2.60's own default policy, called, not re-implemented.

Each control-loop tick builds a real `ray.serve.config.AutoscalingContext` and calls
`ray.serve.autoscaling_policy.replica_queue_length_autoscaling_policy`, whose formula is

    desired = current_running * total_num_requests / (target_ongoing_requests * current_running)

(cold start: at 0 running replicas with requests, at least 1). Serve then applies what its
controller applies to every policy (`_apply_autoscaling_config` in
`ray/serve/autoscaling_policy.py`, the same functions called here in the same order):
`_apply_scaling_factors`, the immediate scale-up from zero, `_apply_delay_logic` with
`upscale_delay_s` (30 s) / `downscale_delay_s` (600 s) measured on the replay's clock
(`_now`, where Serve reads `time.time()`), and finally the [min, max] bounds
(`AutoscalingState.apply_bounds`).

`total_num_requests` is what Serve aggregates for the policy: the mean of the
deployment's ongoing requests (running + queued at replicas + queued at handles) over
`look_back_period_s` (30 s), sampled once per tick here.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve.autoscaling_policy import (
    _apply_delay_logic,
    _apply_scaling_factors,
    _extract_internal_policy_state,
    _get_cold_start_scale_up_replicas,
    replica_queue_length_autoscaling_policy,
)
from ray.serve.config import AutoscalingConfig, AutoscalingContext

from bench.autoscale.observation import Observation

_DEPLOYMENT = DeploymentID(name="model", app_name="replay")


class RayDefault:
    """Ray Serve's default autoscaling, with Serve's default settings unless given."""

    name = "ray-default"

    def __init__(
        self, *, min_replicas: int, max_replicas: int, period_s: float = 1.0, **config: Any
    ) -> None:
        self.period_s = period_s
        self.config = AutoscalingConfig(
            min_replicas=min_replicas, max_replicas=max_replicas, **config
        )
        self._samples: deque[tuple[float, float]] = deque()
        self._state: dict[str, Any] = {}

    def _total_num_requests(self, obs: Observation) -> float:
        self._samples.append((obs.now, float(obs.ongoing)))
        horizon = obs.now - self.config.look_back_period_s
        while self._samples and self._samples[0][0] <= horizon:
            self._samples.popleft()
        return sum(v for _, v in self._samples) / len(self._samples)

    def context(self, obs: Observation, total_num_requests: float) -> AutoscalingContext:
        running = [
            ReplicaID(unique_id=f"r{i}", deployment_id=_DEPLOYMENT) for i in range(obs.ready_count)
        ]
        return AutoscalingContext(
            deployment_id=_DEPLOYMENT,
            deployment_name=_DEPLOYMENT.name,
            app_name=_DEPLOYMENT.app_name,
            current_num_replicas=obs.ready_count,
            target_num_replicas=obs.capacity,
            running_replicas=running,
            total_num_requests=total_num_requests,
            total_queued_requests=float(obs.gateway_pending),
            aggregated_metrics={},
            raw_metrics={},
            capacity_adjusted_min_replicas=self.config.min_replicas,
            capacity_adjusted_max_replicas=self.config.max_replicas,
            policy_state=dict(self._state),
            last_scale_up_time=None,
            last_scale_down_time=None,
            current_time=obs.now,
            config=self.config,
        )

    def desired(self, obs: Observation) -> int:
        ctx = self.context(obs, self._total_num_requests(obs))
        decision = self.apply_serve_wrapper(ctx, obs.now)
        return max(self.config.min_replicas, min(self.config.max_replicas, decision))

    def apply_serve_wrapper(self, ctx: AutoscalingContext, now: float) -> int:
        """Serve's `_apply_autoscaling_config(policy)(ctx)`, on the replay's clock."""
        cold = _get_cold_start_scale_up_replicas(ctx)
        if cold is not None:
            return int(cold)
        previous = dict(ctx.policy_state)
        desired, _user_state = replica_queue_length_autoscaling_policy(ctx)
        scaled = _apply_scaling_factors(desired, ctx.current_num_replicas, self.config)
        if ctx.current_num_replicas == 0 and scaled > 0:
            return int(scaled)
        final, state = _apply_delay_logic(
            max(0, scaled),
            ctx.target_num_replicas,
            self.config,
            _extract_internal_policy_state(previous),
            _now=now,
        )
        self._state = state
        return int(final)
