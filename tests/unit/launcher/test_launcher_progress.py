"""Readiness tracking and the ready banner (pure parts of `modelyard up`)."""

from __future__ import annotations

import pytest

from cluster.cli.summary import curl_command, model_line, render_summary
from cluster.config import ModelDeployment, RaySettings, ServedModel
from cluster.config.catalog import load_builtin_catalog
from cluster.placement import plan_for
from deployments.progress import AppSnapshot, DeploymentSnapshot, ReadinessTracker


def snap(app: str, **deployments: tuple[str, dict[str, int]]) -> AppSnapshot:
    return AppSnapshot(
        status=app,
        deployments={
            name: DeploymentSnapshot(status=status, replicas=replicas)
            for name, (status, replicas) in deployments.items()
        },
    )


def test_tracker_records_first_healthy_time_and_prints_changes_only() -> None:
    tracker = ReadinessTracker(["a", "b"], started_at=100.0)
    assert tracker.observe(snap("DEPLOYING"), 100.5) == []
    lines = tracker.observe(
        snap("DEPLOYING", a=("UPDATING", {"STARTING": 1}), b=("UPDATING", {})), 101.0
    )
    assert len(lines) == 2
    assert "a: UPDATING (1 STARTING)" in lines[0]
    assert "b: UPDATING (no replicas yet)" in lines[1]
    # Same state again: nothing printed.
    assert tracker.observe(snap("DEPLOYING", a=("UPDATING", {"STARTING": 1})), 101.5) == []
    lines = tracker.observe(
        snap("DEPLOYING", a=("HEALTHY", {"RUNNING": 1}), b=("UPDATING", {})), 102.0
    )
    assert lines == ["  [   2.0s] a: ready (1 RUNNING)"]
    assert tracker.ready_after == {"a": 2.0}
    assert not tracker.all_ready
    assert tracker.pending() == ["b"]
    tracker.observe(snap("RUNNING", a=("HEALTHY", {"RUNNING": 1}), b=("HEALTHY", {})), 103.5)
    assert tracker.ready_after == {"a": 2.0, "b": 3.5}
    assert tracker.all_ready
    assert tracker.failure() is None


@pytest.mark.parametrize(
    ("snapshot", "failure"),
    [
        (snap("DEPLOY_FAILED"), "the application failed to deploy"),
        (snap("DEPLOYING", a=("DEPLOY_FAILED", {})), "a: failed to deploy"),
        (snap("DEPLOYING", a=("UNHEALTHY", {"RUNNING": 1})), None),
        (snap("RUNNING", a=("HEALTHY", {"RUNNING": 1})), None),
    ],
)
def test_tracker_failure(snapshot: AppSnapshot, failure: str | None) -> None:
    tracker = ReadinessTracker(["a"], started_at=0.0)
    tracker.observe(snapshot, 1.0)
    assert tracker.failure() == failure


def test_all_ready_needs_the_application_running() -> None:
    tracker = ReadinessTracker(["a"], started_at=0.0)
    tracker.observe(snap("DEPLOYING", a=("HEALTHY", {"RUNNING": 1})), 1.0)
    assert not tracker.all_ready


def _served(model_id: str, engine: str = "sim", replicas: int = 1) -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    deployment = ModelDeployment.model_validate(
        {"id": model_id, "engine": engine, "replicas": replicas}
    )
    return ServedModel(spec=spec, deployment=deployment)


@pytest.mark.parametrize(
    ("model_id", "engine", "replicas", "expected"),
    [
        (
            "minimax/minimax-m1",
            "sim",
            2,
            "engine: sim [SIMULATED]   replicas: 2   16 GPU/replica (TP8 x PP2, EP; 2 nodes)"
            "   ready in 1.5s",
        ),
        (
            "mistralai/devstral-small",
            "vllm",
            1,
            "engine: vllm   replicas: 1   2 GPU/replica (TP2)   ready in 1.5s",
        ),
    ],
)
def test_model_line(model_id: str, engine: str, replicas: int, expected: str) -> None:
    model = _served(model_id, engine, replicas)
    line = model_line(model, plan_for(model, RaySettings()), 1.5)
    assert line.splitlines() == [model_id, "    " + expected]


def test_summary_has_each_model_and_how_to_call_it() -> None:
    models = [_served(i) for i in ("qwen/qwen3-coder-flash", "minimax/minimax-m1")]
    pairs = [(m, plan_for(m, RaySettings())) for m in models]
    text = render_summary(pairs, {"qwen/qwen3-coder-flash": 0.8}, base_url="http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/api/v1" in text
    for model in models:
        assert curl_command("http://127.0.0.1:8000/api/v1", model.id) in text
    assert 'base_url="http://127.0.0.1:8000/api/v1"' in text
    assert "ready in 0.8s" in text
    assert "not ready" in text  # minimax had no readiness time
    assert text.count("[SIMULATED]") == 2
    assert text.rstrip().endswith("Press Ctrl-C to stop.")
