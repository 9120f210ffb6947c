"""Placement plans as Ray Serve deployment options, the GCS table reader, the engine factory."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.config import ModelDeployment, RaySettings, ServedModel
from cluster.config.catalog import load_builtin_catalog
from cluster.errors import ConfigError
from cluster.placement import plan_for
from deployments.engines import factory
from deployments.engines.factory import build_engine
from deployments.placement import (
    DEFAULT_VLLM_MAX_ONGOING,
    max_ongoing_requests,
    parse_placement_table,
    replica_options,
)

CATALOG = load_builtin_catalog()


def served(model_id: str, **deployment: Any) -> ServedModel:
    spec = CATALOG.find(model_id)
    assert spec is not None
    return ServedModel(
        spec=spec, deployment=ModelDeployment.model_validate({"id": model_id, **deployment})
    )


def test_minimax_options_carry_the_plan() -> None:
    model = served("minimax/minimax-m1", replicas=2)
    plan = plan_for(model, RaySettings(gpus_per_node=8))
    options = replica_options(model, plan)
    assert options["name"] == "model-minimax-minimax-m1"
    assert options["num_replicas"] == 2
    assert options["placement_group_bundles"] == [{"CPU": 1.0}] + [{"GPU": 1.0}] * 16
    assert options["placement_group_strategy"] == "PACK"
    # The replica actor must fit bundle 0 (Serve validates this; see the next test).
    assert options["ray_actor_options"] == {"num_cpus": 1.0}


def test_cpu_only_plan_has_no_placement_group() -> None:
    model = served("qwen/qwen3-coder-flash", reserve_gpus=False)
    options = replica_options(model, plan_for(model, RaySettings()))
    assert "placement_group_bundles" not in options
    assert "placement_group_strategy" not in options
    assert options["ray_actor_options"] == {"num_cpus": 1.0}


@pytest.mark.parametrize("model_id", [s.id for s in CATALOG.models])
def test_serve_accepts_the_options(model_id: str) -> None:
    from ray import serve

    from deployments.model_deployment import ModelReplica

    model = served(model_id)
    deployment = serve.deployment(**replica_options(model, plan_for(model, RaySettings())))(
        ModelReplica
    )
    assert deployment.name == model.deployment_name
    assert deployment.num_replicas == 1


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ({"engine": "sim"}, 512),
        ({"engine": "sim", "sim": {"max_num_seqs": 8}}, 16),
        ({"engine": "vllm"}, 2 * DEFAULT_VLLM_MAX_ONGOING),
        ({"engine": "sim", "max_ongoing_requests": 3}, 3),
        ({"engine": "vllm", "max_ongoing_requests": 5}, 5),
    ],
)
def test_max_ongoing_requests(deployment: dict[str, Any], expected: int) -> None:
    assert max_ongoing_requests(served("qwen/qwen3-coder-flash", **deployment)) == expected


@pytest.mark.parametrize(("deployment", "expected"), [({}, 1024), ({"max_queued_requests": 2}, 2)])
def test_max_queued_requests_is_bounded(deployment: dict[str, Any], expected: int) -> None:
    model = served("qwen/qwen3-coder-flash", **deployment)
    assert replica_options(model, plan_for(model, RaySettings()))["max_queued_requests"] == expected


def _row(name: str, state: str, nodes: list[str]) -> dict[str, Any]:
    """One row as `ray.util.placement_group_table()` returns it (bundle index keys)."""
    bundles = {0: {"CPU": 1.0}} | {i: {"GPU": 1.0} for i in range(1, len(nodes))}
    return {
        "placement_group_id": name[-4:],
        "name": name,
        "bundles": bundles,
        "bundles_to_node_id": dict(enumerate(nodes)),
        "strategy": "PACK",
        "state": state,
    }


def test_parse_placement_table_selects_one_deployment() -> None:
    mine = "SERVE_REPLICA::app#model-x#aaaa"
    table = {
        "1": _row(mine, "CREATED", ["n2", "n1", "n2"]),
        "2": _row("SERVE_REPLICA::app#model-x#old0", "REMOVED", ["n1", "n1", "n1"]),
        "3": _row("SERVE_REPLICA::app#model-xy#bbbb", "CREATED", ["n1", "n1", "n1"]),
        "4": _row("SERVE_REPLICA::other#model-x#cccc", "CREATED", ["n1", "n1", "n1"]),
    }
    [placement] = parse_placement_table(table, app_name="app", deployment_name="model-x")
    assert placement.name == mine
    assert placement.bundles == [{"CPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0}]
    assert placement.bundle_nodes == ["n2", "n1", "n2"]
    assert placement.gpus_by_node == {"n1": 1, "n2": 1}


def test_factory_builds_the_simulator() -> None:
    engine = build_engine(served("qwen/qwen3-coder-flash"), replica_id="r-1")
    assert engine.name == "sim"
    assert engine.simulated


def test_factory_names_the_field_when_vllm_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "_VLLM_MODULE", "deployments.engines.not_installed")
    with pytest.raises(ConfigError) as caught:
        build_engine(served("qwen/qwen3-coder-flash", engine="vllm"), replica_id="r-1")
    assert caught.value.param == "engine"
    assert "'vllm' is not available here" in caught.value.message


def test_custom_resources_pin_the_replica_actor_and_its_bundle() -> None:
    pinned = {"pool_a": 1.0}
    cpu = served("qwen/qwen3-coder-flash", reserve_gpus=False, ray_resources=pinned)
    options = replica_options(cpu, plan_for(cpu, RaySettings()))
    assert options["ray_actor_options"] == {"num_cpus": 1.0, "resources": pinned}
    gpu = served("minimax/minimax-m1", ray_resources=pinned)
    options = replica_options(gpu, plan_for(gpu, RaySettings(gpus_per_node=8)))
    assert options["placement_group_bundles"][0] == {"CPU": 1.0, "pool_a": 1.0}
    assert options["ray_actor_options"]["resources"] == pinned

    from ray import serve

    from deployments.model_deployment import ModelReplica

    assert serve.deployment(**options)(ModelReplica).name == gpu.deployment_name


def test_health_settings_become_serve_health_checks() -> None:
    model = served("qwen/qwen3-coder-flash", health={"check_period_s": 1, "check_timeout_s": 4})
    options = replica_options(model, plan_for(model, RaySettings()))
    assert (options["health_check_period_s"], options["health_check_timeout_s"]) == (1.0, 4.0)
    defaults = served("qwen/qwen3-coder-flash").deployment.health
    assert (defaults.stall_after_s, defaults.check_period_s) == (60.0, 10.0)


def test_gateway_resources_pin_the_gateway_replica() -> None:
    from cluster.config import parse_config
    from deployments.gateway import bind_gateway

    config = parse_config(
        {"gateway": {"ray_resources": {"ingress": 1}}, "models": [{"id": "qwen/qwen3-coder-flash"}]}
    )
    options = bind_gateway(config, {})._bound_deployment.ray_actor_options
    assert options == {"num_cpus": 1, "resources": {"ingress": 1.0}}
