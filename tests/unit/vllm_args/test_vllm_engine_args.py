"""The generated vLLM configuration of every catalog model, as given on two 8xH100 nodes.

These tables are the documentation of what each replica's engine receives: a change to the
catalog or to `vllm_config_for` shows up here as a diff.
"""

from __future__ import annotations

from typing import Any

import pytest

from cluster.config import RaySettings, load_builtin_catalog
from cluster.config.loader import parse_config
from cluster.config.settings import ModelDeployment, ServedModel
from cluster.config.vllm_args import VLLMDeploymentSettings
from cluster.config.vllm_config import vllm_config_for
from cluster.errors import ConfigError
from cluster.placement import plan_for

# Two nodes of 8 H100s each (the Ray settings of such a cluster).
NODE_PAIR = RaySettings(address="ray://head:10001", gpus_per_node=8)

COMMON: dict[str, Any] = {
    "dtype": "auto",
    "trust_remote_code": False,
    "tokenizer_mode": "auto",
    "config_format": "auto",
    "load_format": "auto",
    "enable_lora": False,
    "max_loras": 1,
    "max_lora_rank": 16,
    "max_cpu_loras": None,
    "gpu_memory_utilization": 0.9,
    "max_num_seqs": None,
    "max_num_batched_tokens": None,
    "enforce_eager": False,
    "seed": 0,
    "quantization": None,
    "enable_prefix_caching": True,
    "enable_expert_parallel": False,
    "pipeline_parallel_size": 1,
}

EXPECTED: dict[str, dict[str, Any]] = {
    "mistralai/devstral-small": {
        **COMMON,
        "model": "mistralai/Devstral-Small-2507",
        "served_model_name": "mistralai/devstral-small",
        "tokenizer_mode": "mistral",
        "config_format": "mistral",
        "load_format": "mistral",
        "max_model_len": 131072,
        "tensor_parallel_size": 2,
        "distributed_executor_backend": "ray",
    },
    "minimax/minimax-m1": {
        **COMMON,
        "model": "MiniMaxAI/MiniMax-M1-80k",
        "served_model_name": "minimax/minimax-m1",
        "trust_remote_code": True,
        "max_model_len": 1000000,
        "tensor_parallel_size": 8,
        "pipeline_parallel_size": 2,
        "enable_expert_parallel": True,
        "distributed_executor_backend": "ray",
        "enable_prefix_caching": False,
    },
    "qwen/qwen3-coder-flash": {
        **COMMON,
        "model": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
        "served_model_name": "qwen/qwen3-coder-flash",
        "max_model_len": 131072,
        "tensor_parallel_size": 2,
        "enable_expert_parallel": True,
        "distributed_executor_backend": "ray",
    },
    "casperhansen/mistral-small-24b-instruct-2501-awq": {
        **COMMON,
        "model": "casperhansen/mistral-small-24b-instruct-2501-awq",
        "served_model_name": "casperhansen/mistral-small-24b-instruct-2501-awq",
        "max_model_len": 32768,
        "tensor_parallel_size": 1,
        "distributed_executor_backend": None,
        "quantization": "awq_marlin",
        "enable_lora": True,
        "max_loras": 4,
        "max_lora_rank": 16,
    },
}

# (vLLM's tool parser, the core's tool parser, bundle indices of the GPU ranks, placement:
# nodes, strategy). MiniMax-M1's <tool_calls> format has no vLLM 0.32 parser: the core
# parses it (cluster/parsing/minimax_tools.py), vLLM passes the text through.
SERVING: dict[str, tuple[str | None, str | None, str | None, int, str]] = {
    "mistralai/devstral-small": ("mistral", None, "1,2", 1, "STRICT_PACK"),
    "minimax/minimax-m1": (
        None,
        "minimax_m1",
        ",".join(str(i) for i in range(1, 17)),
        2,
        "PACK",
    ),
    "qwen/qwen3-coder-flash": ("qwen3_coder", None, "1,2", 1, "STRICT_PACK"),
    "casperhansen/mistral-small-24b-instruct-2501-awq": ("mistral", None, None, 1, "STRICT_PACK"),
}


def served(model_id: str, **deployment: Any) -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, **deployment))


@pytest.mark.parametrize("model_id", sorted(EXPECTED))
def test_engine_args_for_each_catalog_model(model_id: str) -> None:
    config = vllm_config_for(served(model_id, engine="vllm"))
    assert config.engine.engine_kwargs() == EXPECTED[model_id]


@pytest.mark.parametrize("model_id", sorted(SERVING))
def test_serving_args_env_and_placement(model_id: str) -> None:
    parser, core_parser, bundles, nodes, strategy = SERVING[model_id]
    model = served(model_id, engine="vllm")
    config = vllm_config_for(model)
    assert config.serving.tool_call_parser == parser
    assert config.serving.core_tool_parser == core_parser
    assert config.serving.enable_auto_tool_choice is True  # "auto" reaches vLLM either way
    assert config.serving.reasoning_parser is None  # think tags are parsed by the gateway
    assert config.serving.enable_prompt_tokens_details is True
    plan = plan_for(model, NODE_PAIR)
    assert (plan.nodes, plan.strategy) == (nodes, strategy)
    if bundles is None:
        assert config.env == {}
    else:
        assert config.env == {"VLLM_RAY_BUNDLE_INDICES": bundles}
        assert bundles == ",".join(str(i) for i in plan.gpu_bundles)
        assert (
            plan.gpus
            == EXPECTED[model_id]["tensor_parallel_size"]
            * (EXPECTED[model_id]["pipeline_parallel_size"])
        )


def test_kv_events_only_for_models_with_prefix_caching() -> None:
    endpoint = "tcp://127.0.0.1:5557"
    qwen = vllm_config_for(served("qwen/qwen3-coder-flash"), kv_events_endpoint=endpoint)
    assert qwen.engine.kv_events_config is not None
    assert qwen.engine.kv_events_config.endpoint == endpoint
    minimax = vllm_config_for(served("minimax/minimax-m1"), kv_events_endpoint=endpoint)
    assert minimax.engine.kv_events_config is None
    off = served("qwen/qwen3-coder-flash", vllm=VLLMDeploymentSettings(kv_events=False))
    assert vllm_config_for(off, kv_events_endpoint=endpoint).engine.kv_events_config is None


@pytest.mark.parametrize(
    ("settings", "field", "value"),
    [
        ({"model_path": "/models/qwen"}, "model", "/models/qwen"),
        ({"max_model_len": 65536}, "max_model_len", 65536),
        ({"gpu_memory_utilization": 0.8}, "gpu_memory_utilization", 0.8),
        ({"max_num_seqs": 64}, "max_num_seqs", 64),
        ({"enforce_eager": True}, "enforce_eager", True),
        ({"executor": "mp"}, "distributed_executor_backend", "mp"),
        ({"dtype": "bfloat16"}, "dtype", "bfloat16"),
    ],
)
def test_deployment_overrides(settings: dict[str, Any], field: str, value: Any) -> None:
    model = served("qwen/qwen3-coder-flash", vllm=VLLMDeploymentSettings(**settings))
    assert vllm_config_for(model).engine.engine_kwargs()[field] == value


def test_adapters_reach_the_serving_layer_only_for_lora_models() -> None:
    model = served(
        "casperhansen/mistral-small-24b-instruct-2501-awq",
        vllm=VLLMDeploymentSettings(adapters={"sql": "/adapters/sql"}, max_cpu_loras=8),
    )
    config = vllm_config_for(model)
    assert config.serving.adapters == {"sql": "/adapters/sql"}
    assert config.engine.max_cpu_loras == 8


def _config(model: dict[str, Any]) -> dict[str, Any]:
    return {"models": [model]}


@pytest.mark.parametrize(
    ("model", "names"),
    [
        (  # a misspelled engine argument fails at load and is named
            {"id": "qwen/qwen3-coder-flash", "engine": "vllm", "vllm": {"max_model_lenght": 8}},
            "models[0].vllm.max_model_lenght",
        ),
        (
            {"id": "qwen/qwen3-coder-flash", "engine": "vllm", "vllm": {"dtype": "fp9"}},
            "models[0].vllm.dtype",
        ),
        (
            {
                "id": "qwen/qwen3-coder-flash",
                "engine": "vllm",
                "vllm": {"gpu_memory_utilization": 1.5},
            },
            "models[0].vllm.gpu_memory_utilization",
        ),
        (
            {"id": "qwen/qwen3-coder-flash", "vllm": {"adapters": {"bad name": "/x"}}},
            "models[0].vllm.adapters",
        ),
        (  # adapters on a model without LoRA
            {"id": "qwen/qwen3-coder-flash", "vllm": {"adapters": {"sql": "/adapters/sql"}}},
            "models[0].vllm.adapters",
        ),
        (  # a context longer than the model's window
            {"id": "qwen/qwen3-coder-flash", "vllm": {"max_model_len": 10_000_000}},
            "models[0].vllm.max_model_len",
        ),
    ],
)
def test_bad_vllm_settings_fail_at_load_naming_the_field(model: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(model))
    assert names in caught.value.message


@pytest.mark.parametrize(
    ("catalog_vllm", "names"),
    [
        ({"tokenizer_mod": "mistral"}, "catalog[0].vllm.tokenizer_mod"),
        ({"load_format": "gguf"}, "catalog[0].vllm.load_format"),
        ({"trust_remote_code": "maybe"}, "catalog[0].vllm.trust_remote_code"),
    ],
)
def test_bad_catalog_vllm_args_fail_at_load(catalog_vllm: dict[str, Any], names: str) -> None:
    entry = {
        "id": "local/tiny",
        "display_name": "Tiny",
        "weights": "/models/tiny",
        "params_b": 0.001,
        "active_params_b": 0.001,
        "num_layers": 2,
        "kv_bytes_per_token": 256,
        "context_window": 1024,
        "vllm": catalog_vllm,
    }
    with pytest.raises(ConfigError) as caught:
        parse_config({"catalog": [entry], "models": [{"id": "local/tiny"}]})
    assert names in caught.value.message
