"""The policy as Ray Serve's custom autoscaling policy of every model deployment.

`deployments` names it by import path (`cluster.config.autoscaling.SERVE_POLICY`) in each
model deployment's `AutoscalingConfig(policy=AutoscalingPolicy(policy_function=...,
policy_kwargs=<models[i].autoscaling>))`; Serve's controller imports this module,
instantiates `ModelyardServePolicy(**policy_kwargs)` once, and calls it every control-loop
tick with the deployment's `AutoscalingContext`. The only module of `autoscaler/` that
touches Ray's types (and only through the context object it is handed).

From the context to `autoscaler.context.PolicyContext`:

- ready = `current_num_replicas` (running replicas); starting = `target_num_replicas` -
  ready when positive (replicas Serve is still starting);
- ongoing = `total_num_requests` (running + queued at replicas + queued at the gateway's
  handles: the gateway's pending requests), averaged by Serve over `look_back_period_s`;
- waiting = sum of the replicas' `waiting` + `total_queued_requests` (handle queues);
- kv_usage = mean of the replicas' `kv_usage`; recent_ttft_s = mean of their
  `recent_ttft_s` (replicas without one left out); prompt_tokens_per_s = sum of theirs
  (`cluster.engine.signals`, reported by `ModelReplica.record_autoscaling_stats`);
- now = `current_time`.

The returned state is `PolicyState.to_dict()`; Serve stores it and hands it back as
`policy_state` (with its own delay keys, which the deployment sets to zero: the policy's
stabilizer does the delaying). A decision that changes the count is logged with its
reasons. Every decision is exported through Ray's metrics (`ray.util.metrics`, on each
node's metrics port, where Ray prefixes `ray_`): `modelyard_autoscaler_desired_replicas`
and `modelyard_autoscaler_load_replicas` (the load in replicas), tagged with the
deployment.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from autoscaler.context import Decision, PolicyContext, PolicyState
from autoscaler.policy import decide
from cluster.config.autoscaling import AutoscalingSettings
from cluster.engine.signals import ReplicaSignal

logger = logging.getLogger("ray.serve")


def _values(metrics: Mapping[str, Mapping[Any, float]] | None, name: str) -> list[float]:
    if not metrics:
        return []
    return [float(v) for v in (metrics.get(name) or {}).values()]


def context_from_serve(ctx: Any) -> PolicyContext:
    """A `PolicyContext` from Serve's `AutoscalingContext` (module docstring)."""
    metrics = ctx.aggregated_metrics
    ready = int(ctx.current_num_replicas)
    kv = _values(metrics, ReplicaSignal.KV_USAGE)
    ttft = [v for v in _values(metrics, ReplicaSignal.RECENT_TTFT_S) if v > 0]
    queued = float(ctx.total_queued_requests or 0.0)
    return PolicyContext(
        now=float(ctx.current_time),
        ready=ready,
        starting=max(int(ctx.target_num_replicas) - ready, 0),
        ongoing=float(ctx.total_num_requests),
        waiting=sum(_values(metrics, ReplicaSignal.WAITING)) + queued,
        kv_usage=sum(kv) / len(kv) if kv else 0.0,
        prompt_tokens_per_s=sum(_values(metrics, ReplicaSignal.PROMPT_TOKENS_PER_S)),
        recent_ttft_s=sum(ttft) / len(ttft) if ttft else 0.0,
    )


class DecisionSink(Protocol):
    def record(self, deployment: str, desired: int, load: float) -> None: ...


class RayGauges:
    """The decision as two `ray.util.metrics` gauges (created on first use, in Serve's
    controller, where Ray is running)."""

    def __init__(self) -> None:
        self._gauges: tuple[Any, Any] | None = None

    def record(self, deployment: str, desired: int, load: float) -> None:
        if self._gauges is None:
            from ray.util.metrics import Gauge

            keys = ("deployment",)
            self._gauges = (
                Gauge("modelyard_autoscaler_desired_replicas", "replicas wanted", keys),
                Gauge("modelyard_autoscaler_load_replicas", "load in replicas", keys),
            )
        tags = {"deployment": deployment}
        self._gauges[0].set(desired, tags=tags)
        self._gauges[1].set(load, tags=tags)


class ModelyardServePolicy:
    """Serve instantiates this once per deployment with `policy_kwargs` (the settings)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = AutoscalingSettings(**settings)
        self.last_decision: Decision | None = None
        self.sink: DecisionSink = RayGauges()

    def __call__(self, ctx: Any) -> tuple[int, dict[str, Any]]:
        policy_ctx = context_from_serve(ctx)
        state = PolicyState.from_dict(dict(ctx.policy_state or {}))
        decision = decide(self.settings, policy_ctx, state)
        if decision.replicas != policy_ctx.capacity:
            logger.info(
                "autoscaler %s: %d -> %d replicas (%s; ongoing %.1f, waiting %.1f, kv %.2f)",
                getattr(ctx, "deployment_name", "?"),
                policy_ctx.capacity,
                decision.replicas,
                ", ".join(decision.reasons),
                policy_ctx.ongoing,
                policy_ctx.waiting,
                policy_ctx.kv_usage,
            )
        self.last_decision = decision
        samples = decision.state.samples
        try:
            self.sink.record(
                str(getattr(ctx, "deployment_name", "?")),
                decision.replicas,
                samples[-1][1] if samples else 0.0,
            )
        except Exception:  # metrics must never stop the autoscaler
            logger.exception("autoscaler metrics failed")
        return decision.replicas, decision.state.to_dict()
