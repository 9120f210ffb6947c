"""The Serve adapter: Serve's context in, the policy's answer and state out; the import
path deployments configures resolves to it; replicas' signals."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from autoscaler.context import PolicyState
from autoscaler.serve_adapter import ModelyardServePolicy, context_from_serve
from cluster.config.autoscaling import SERVE_POLICY, AutoscalingSettings
from cluster.config.settings import ModelDeployment
from cluster.engine import EngineStats
from deployments.autoscaling import autoscaling_config
from deployments.autoscaling_signals import ReplicaSignals


def serve_ctx(**overrides: Any) -> SimpleNamespace:
    values: dict[str, Any] = {
        "deployment_name": "model-x",
        "current_num_replicas": 2,
        "target_num_replicas": 3,
        "total_num_requests": 40.0,
        "total_queued_requests": 4.0,
        "aggregated_metrics": {
            "waiting": {"r1": 3.0, "r2": 1.0},
            "kv_usage": {"r1": 0.5, "r2": 0.7},
            "prompt_tokens_per_s": {"r1": 100.0, "r2": 300.0},
        },
        "policy_state": {},
        "current_time": 1000.0,
    }
    values.update(overrides)
    return SimpleNamespace(**values)


def test_context_from_serve() -> None:
    ctx = context_from_serve(serve_ctx())
    assert (ctx.ready, ctx.starting, ctx.ongoing, ctx.waiting) == (2, 1, 40.0, 8.0)
    assert ctx.kv_usage == pytest.approx(0.6)
    assert ctx.prompt_tokens_per_s == pytest.approx(400.0)
    assert ctx.now == 1000.0


def test_no_metrics_yet() -> None:
    ctx = context_from_serve(serve_ctx(aggregated_metrics=None, total_queued_requests=None))
    assert (ctx.waiting, ctx.kv_usage, ctx.prompt_tokens_per_s) == (0.0, 0.0, 0.0)


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, int, float]] = []

    def record(self, deployment: str, desired: int, load: float) -> None:
        self.records.append((deployment, desired, load))


def test_policy_answers_and_keeps_state_through_serves_dict() -> None:
    policy = ModelyardServePolicy(
        **AutoscalingSettings(target_ongoing_per_replica=4, max_replicas=16).model_dump()
    )
    policy.sink = sink = Sink()
    replicas, state = policy(serve_ctx())
    assert replicas == 10  # 40 ongoing / 4 per replica = 10, above the 3 already asked
    assert PolicyState.from_dict(state).last_up == 1000.0
    # Serve hands the state back with its own keys added: they are ignored.
    state = {**state, "__decision_counter": 0}
    replicas, _ = policy(serve_ctx(policy_state=state, current_time=1001.0))
    assert replicas >= 10
    assert sink.records[0] == ("model-x", 10, 10.0)  # desired, load in replicas (40 / 4)


def test_deployments_configures_serve_with_the_adapter_by_path() -> None:
    deployment = ModelDeployment(
        id="x", replicas=3, autoscaling={"min_replicas": 0, "max_replicas": 2}
    )
    config = autoscaling_config(deployment)
    assert config is not None
    assert config["initial_replicas"] == 2  # replicas clamped into the bounds
    assert config["upscale_delay_s"] == config["downscale_delay_s"] == 0.0
    assert config["policy"]["policy_function"] == SERVE_POLICY
    module, _, name = SERVE_POLICY.partition(":")
    cls = getattr(__import__(module, fromlist=[name]), name)
    assert cls is ModelyardServePolicy
    assert cls(**config["policy"]["policy_kwargs"]).settings.max_replicas == 2
    assert autoscaling_config(ModelDeployment(id="x")) is None


def test_replica_signals() -> None:
    now = [0.0]
    signals = ReplicaSignals(ttft_window=2, clock=lambda: now[0])
    stats = EngineStats(running=3, waiting=2, kv_usage=0.25, prefix_cache_queries=1000)
    now[0] = 2.0
    report = signals.report(stats)
    assert report == {
        "running": 3.0,
        "waiting": 2.0,
        "kv_usage": 0.25,
        "recent_ttft_s": 0.0,
        "prompt_tokens_per_s": 500.0,
    }
    for ttft in (1.0, 2.0, 3.0):
        signals.first_token(ttft)
    now[0] = 3.0
    report = signals.report(stats.model_copy(update={"prefix_cache_queries": 1500}))
    assert report["recent_ttft_s"] == pytest.approx(2.5)  # the last two
    assert report["prompt_tokens_per_s"] == pytest.approx(500.0)
    # a model without prefix caching: prompt tokens of finished requests
    plain = ReplicaSignals(clock=lambda: now[0])
    plain.finished(300)
    now[0] = 4.0
    assert plain.report(EngineStats(running=0, waiting=0, kv_usage=0.0))[
        "prompt_tokens_per_s"
    ] == pytest.approx(300.0)
