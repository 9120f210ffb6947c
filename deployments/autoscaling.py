"""`autoscaling_config` of a model deployment from `models[i].autoscaling`.

The policy is modelyard's (`cluster.config.autoscaling.SERVE_POLICY`, by import path:
`deployments` never imports `autoscaler`), with the model's settings as its keyword
arguments. Serve's own delays are zero (the policy's stabilizer delays scale-down and
never delays scale-up); Serve's bounds are the same min/max; replicas report every
`metrics_interval_s` and Serve averages ongoing requests over three such intervals.
"""

from __future__ import annotations

from typing import Any

from cluster.config.autoscaling import SERVE_POLICY
from cluster.config.settings import ModelDeployment


def autoscaling_config(deployment: ModelDeployment) -> dict[str, Any] | None:
    """Serve's `autoscaling_config` for this model (None: a fixed replica count)."""
    settings = deployment.autoscaling
    if settings is None:
        return None
    initial = min(max(deployment.replicas, settings.min_replicas), settings.max_replicas)
    return {
        "min_replicas": settings.min_replicas,
        "max_replicas": settings.max_replicas,
        "initial_replicas": initial,
        "metrics_interval_s": settings.metrics_interval_s,
        "look_back_period_s": 3 * settings.metrics_interval_s,
        "upscale_delay_s": 0.0,
        "downscale_delay_s": 0.0,
        "downscale_to_zero_delay_s": 0.0,
        "policy": {
            "policy_function": SERVE_POLICY,
            "policy_kwargs": settings.model_dump(mode="json"),
        },
    }
