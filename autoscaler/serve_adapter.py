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
stabilizer does the delaying). The last decision is logged when it changes, with its
reasons, and kept as `last_decision` (exported by the gateway's metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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


class ModelyardServePolicy:
    """Serve instantiates this once per deployment with `policy_kwargs` (the settings)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = AutoscalingSettings(**settings)
        self.last_decision: Decision | None = None

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
        return decision.replicas, decision.state.to_dict()
