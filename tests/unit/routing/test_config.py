"""What each model deployment's request router is told, from the `routing:` section."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cluster.config import parse_config
from cluster.config.settings import RoutingConfig
from cluster.routing import RoutingSettings
from deployments.routing.config import (
    DEBUG_DECISIONS,
    REQUEST_ROUTER_CLASS,
    RouterKwargs,
    request_router_config,
    router_kwargs,
    routing_settings,
)
from tests.unit.routing.replicas import AWQ, CATALOG, MINIMAX, QWEN, served


@pytest.mark.parametrize(
    ("model_id", "engine", "hashing", "kv_events", "caching"),
    [
        (QWEN, "sim", "sim", True, True),
        (AWQ, "sim", "sim", True, True),
        (MINIMAX, "sim", "sim", False, False),  # no prefix caching: placed by load alone
        (QWEN, "vllm", "vllm", True, True),  # vLLM's own tokenizer router-side: exact
        (MINIMAX, "vllm", "proxy", False, False),  # no prefix caching: no hashes, no events
    ],
)
def test_router_kwargs_per_model(
    model_id: str, engine: str, hashing: str, kv_events: bool, caching: bool
) -> None:
    kwargs = router_kwargs(served(model_id, engine=engine), RoutingConfig())
    assert (kwargs.hashing, kwargs.kv_events, kwargs.prefix_caching) == (
        hashing,
        kv_events,
        caching,
    )
    assert kwargs.model_id == model_id
    assert kwargs.record_decisions == 0


def test_simulated_models_index_in_the_engines_block_size() -> None:
    routing = RoutingConfig.model_validate({"index": {"block_tokens": 64}})
    sim = router_kwargs(served(QWEN, block_size=32), routing)
    vllm = router_kwargs(served(QWEN, engine="vllm"), routing)
    assert sim.block_tokens == 32
    assert vllm.block_tokens == 64


@pytest.mark.parametrize(
    ("section", "kv_events", "decisions"),
    [({}, True, 0), ({"kv_events": False}, False, 0), ({"debug_endpoint": True}, True, 256)],
)
def test_live_knobs_reach_the_router(
    section: dict[str, Any], kv_events: bool, decisions: int
) -> None:
    kwargs = router_kwargs(served(QWEN), RoutingConfig.model_validate(section))
    assert kwargs.kv_events is kv_events
    assert kwargs.record_decisions == decisions == (DEBUG_DECISIONS if decisions else 0)


def test_router_settings_leave_the_live_knobs_out() -> None:
    routing = RoutingConfig.model_validate(
        {"weights": {"prefix": 8.0}, "stats_period_s": 0.5, "failover_attempts": 2}
    )
    settings = routing_settings(routing)
    assert type(settings) is RoutingSettings
    assert settings.weights.prefix == 8.0


def test_the_deployment_option_is_what_serve_accepts() -> None:
    from ray.serve.config import RequestRouterConfig

    routing = RoutingConfig.model_validate({"stats_period_s": 0.5})
    option = request_router_config(served(QWEN), routing)
    config = RequestRouterConfig(**option)
    assert config.request_router_class == REQUEST_ROUTER_CLASS
    assert config.request_routing_stats_period_s == 0.5
    router_cls = config.get_request_router_class()
    assert router_cls.__name__ == "RoutingRequestRouter"
    assert RouterKwargs.model_validate(config.request_router_kwargs).model_id == QWEN


def test_placement_section_in_the_cluster_file() -> None:
    config = parse_config(
        {
            "routing": {"weights": {"queue": 2.0}, "failover_attempts": 5},
            "models": [{"id": QWEN}],
        }
    )
    assert config.routing.weights.queue == 2.0
    assert config.routing.failover_attempts == 5
    assert config.routing.debug_endpoint is False


@pytest.mark.parametrize(
    "section",
    [{"stats_period_s": 0}, {"failover_attempts": 0}, {"no_such_knob": 1}],
)
def test_bad_placement_settings_are_refused(section: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RoutingConfig.model_validate(section)


def test_every_catalog_model_gets_a_router() -> None:
    for spec in CATALOG.models:
        kwargs = router_kwargs(served(spec.id), RoutingConfig())
        assert kwargs.prefix_caching is spec.prefix_caching
        assert kwargs.kv_events is spec.prefix_caching
