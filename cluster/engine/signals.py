"""The autoscaling signals a model replica reports (Ray Serve's `record_autoscaling_stats`)
and the autoscaler reads (`ctx.aggregated_metrics`): one name each, shared by both sides.

- `running`, `waiting`: the engine's running and waiting requests (vLLM's
  `num_requests_running` / `num_requests_waiting`);
- `kv_usage`: KV-cache usage in [0, 1];
- `recent_ttft_s`: mean time to first token of the replica's recent requests (0: none);
- `prompt_tokens_per_s`: prompt tokens the replica took per second since its last report.
"""

from __future__ import annotations

from enum import StrEnum


class ReplicaSignal(StrEnum):
    RUNNING = "running"
    WAITING = "waiting"
    KV_USAGE = "kv_usage"
    RECENT_TTFT_S = "recent_ttft_s"
    PROMPT_TOKENS_PER_S = "prompt_tokens_per_s"
