"""`ray-default` calls Ray Serve's own policy and delay logic: tables from Serve's docs
(desired = total ongoing requests / target_ongoing_requests, upscale after 30 s, downscale
after 600 s), and the composition checked against Serve's own wrapper."""

from __future__ import annotations

import pytest

pytest.importorskip("ray.serve")

from ray.serve.autoscaling_policy import (
    _apply_autoscaling_config,
    replica_queue_length_autoscaling_policy,
)

from bench.autoscale.baselines.ray_default import RayDefault
from bench.autoscale.observation import Observation, ReplicaLoad


def obs(now: float, ready: int, ongoing: int, starting: int = 0) -> Observation:
    per = ongoing // max(ready, 1)
    loads = tuple(ReplicaLoad(running=per, waiting=0, kv_usage=0.0) for _ in range(ready))
    pending = ongoing - per * ready
    return Observation(now=now, ready=loads, starting=starting, gateway_pending=pending)


def test_scale_up_after_the_upscale_delay() -> None:
    ray = RayDefault(
        min_replicas=1, max_replicas=10, look_back_period_s=1.0, metrics_interval_s=0.5
    )
    # 2 replicas, 10 ongoing, target 2 -> 5, but only once wanted for 30 s
    assert ray.desired(obs(0.0, 2, 10)) == 2
    assert ray.desired(obs(29.0, 2, 10)) == 2
    assert ray.desired(obs(30.0, 2, 10)) == 5


def test_scale_down_after_the_downscale_delay() -> None:
    ray = RayDefault(
        min_replicas=1, max_replicas=10, look_back_period_s=1.0, metrics_interval_s=0.5
    )
    assert ray.desired(obs(0.0, 4, 2)) == 4
    assert ray.desired(obs(599.0, 4, 2)) == 4
    assert ray.desired(obs(600.0, 4, 2)) == 1


def test_cold_start_from_zero_is_immediate() -> None:
    ray = RayDefault(min_replicas=0, max_replicas=10)
    assert ray.desired(obs(0.0, 0, 3)) == 1


def test_bounds() -> None:
    ray = RayDefault(min_replicas=2, max_replicas=6, upscale_delay_s=0.0, downscale_delay_s=0.0)
    assert ray.desired(obs(0.0, 3, 100)) == 6
    ray = RayDefault(min_replicas=2, max_replicas=6, upscale_delay_s=0.0, downscale_delay_s=0.0)
    assert ray.desired(obs(0.0, 3, 0)) == 2


@pytest.mark.parametrize(("ready", "ongoing"), [(2, 10), (4, 2), (3, 6), (5, 37)])
def test_same_answer_as_serves_own_wrapper_without_delays(ready: int, ongoing: int) -> None:
    ray = RayDefault(min_replicas=1, max_replicas=50, upscale_delay_s=0.0, downscale_delay_s=0.0)
    ctx = ray.context(obs(0.0, ready, ongoing), float(ongoing))
    serve_answer, _ = _apply_autoscaling_config(replica_queue_length_autoscaling_policy)(ctx)
    assert ray.apply_serve_wrapper(ctx, 0.0) == serve_answer
