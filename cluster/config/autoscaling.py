"""`models[i].autoscaling` — how the autoscaler sizes one model deployment.

Part of the cluster file's schema (`cluster.config.settings.ModelDeployment.autoscaling`);
the policy that reads it is `autoscaler.policy` (formulas there), and the Ray Serve
adapter `autoscaler.serve_adapter` receives it as the policy's keyword arguments. Every
constant has a default that holds for an LLM replica taking minutes to start.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AutoscalingSettings(BaseModel):
    """Queue-depth autoscaling of one model (all times in seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(
        default=1,
        ge=0,
        description="fewest replicas; 0 turns scale to zero on (after scale_to_zero_idle_s)",
    )
    max_replicas: int = Field(default=8, ge=1, description="most replicas")
    target_ongoing_per_replica: float = Field(
        default=192.0,
        gt=0,
        description="queue-depth target: ongoing (running + waiting) requests one replica "
        "serves within its latency objective (default: 3/4 of vLLM's max_num_seqs 256)",
    )
    target_prompt_tokens_per_s: float | None = Field(
        default=None,
        gt=0,
        description="prefill target: prompt tokens per second one replica takes within its "
        "TTFT objective (about 0.6 x its measured prefill throughput); null: sized by the "
        "queue alone",
    )
    stable_window_s: float = Field(
        default=60.0, gt=0, description="window whose mean demand sizes the deployment"
    )
    panic_window_s: float = Field(
        default=6.0, gt=0, description="short window that reacts to a burst at once"
    )
    panic_threshold: float = Field(
        default=2.0,
        gt=1.0,
        description="panic when the panic window's demand reaches this multiple of capacity",
    )
    kv_usage_guard: float = Field(
        default=0.8,
        gt=0,
        le=1.0,
        description="saturation guard: mean KV-cache usage of ready replicas at or above this "
        "adds one",
    )
    queue_guard_per_replica: float = Field(
        default=5.0,
        gt=0,
        description="saturation guard: engine-waiting requests per ready replica at or above this "
        "adds one",
    )
    ttft_guard_s: float | None = Field(
        default=None,
        gt=0,
        description="saturation guard: the ready replicas' recent mean time to first token at "
        "or above this adds one (e.g. half the TTFT objective); null: off",
    )
    max_calibration: float = Field(
        default=4.0,
        ge=1.0,
        description="the guard's evidence may scale the load model up to this factor "
        "(autoscaler.calibration); 1 turns calibration off",
    )
    calibration_half_life_s: float = Field(
        default=1800.0, gt=0, description="the calibration fades back to 1 with this half-life"
    )
    startup_s: float = Field(
        default=180.0,
        ge=0,
        description="replica start-up time assumed until one has been measured (lead time)",
    )
    max_lead_factor: float = Field(
        default=2.0,
        ge=1.0,
        description="the forecast over the lead time never exceeds this multiple of stable demand",
    )
    scale_down_headroom: float = Field(
        default=0.8,
        gt=0,
        le=1.0,
        description="scale down only if N-1 replicas carry the window's peak demand at this "
        "fraction of their target",
    )
    scale_down_delay_s: float = Field(
        default=300.0, ge=0, description="no scale-down for this long after a scale-up"
    )
    scale_down_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="at least this long between two scale-downs (one replica each)",
    )
    scale_to_zero_idle_s: float = Field(
        default=300.0,
        ge=0,
        description="with min_replicas 0: no request for this long scales the model to zero",
    )
    metrics_interval_s: float = Field(
        default=2.0, gt=0, description="how often replicas report their stats to the autoscaler"
    )

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas})"
            )
        if self.panic_window_s >= self.stable_window_s:
            raise ValueError(
                f"panic_window_s ({self.panic_window_s}) must be shorter than "
                f"stable_window_s ({self.stable_window_s})"
            )
        return self


#: The import path Ray Serve loads the policy from (`autoscaler.serve_adapter`); set by
#: `deployments` on every autoscaled model deployment, so neither package imports the other.
SERVE_POLICY = "autoscaler.serve_adapter:ModelyardServePolicy"
