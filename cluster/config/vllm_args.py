"""Typed vLLM engine arguments: what each model needs, checked when the config is loaded.

Three layers, each a pydantic model with `extra="forbid"` (a misspelled key fails at load
and the message names it):

- `VLLMModelArgs` (catalog, `ModelSpec.vllm`): facts about a model's checkpoint that vLLM
  must be told — tokenizer / config / load formats, remote code, a chat template override.
- `VLLMDeploymentSettings` (cluster file, `ModelDeployment.vllm`): operator knobs for one
  deployment — a local weights path, memory utilisation, batch limits, LoRA adapters.
- `VLLMConfig` = `VLLMEngineArgs` + `VLLMServingArgs`: the complete, generated input of one
  replica's engine, produced by `cluster.config.vllm_config.vllm_config_for(served)`. Field
  names are exactly vLLM's `AsyncEngineArgs` / OpenAI-serving names, so the adapter in
  `deployments/engines/vllm` passes `engine.engine_kwargs()` through without renaming anything.

Derivations (documented once, here):
- max_model_len = deployment override, else catalog override, else `context_window`.
- tensor_parallel_size / pipeline_parallel_size / enable_expert_parallel = the catalog's
  `parallelism`; GPUs per replica = tensor x pipeline.
- distributed_executor_backend: "ray" when a replica spans more than one GPU (vLLM's Ray
  executor then places its workers in the replica's placement group, on the GPU bundles
  named by VLLM_RAY_BUNDLE_INDICES), else vLLM's default.
- enable_prefix_caching = catalog `prefix_caching` (false for MiniMax-M1's linear attention).
- enable_lora / max_loras / max_lora_rank = catalog `lora`; adapters need it.
- quantization = catalog `quantization` (None lets vLLM detect it from the checkpoint).
- reasoning: vLLM gets no reasoning parser for `think_tags` models; their raw text reaches
  the gateway, whose `<think>` parser fills `reasoning_content`.
- tool calls: tool_call_parser = the catalog's `tool_parser`, except for the formats the core
  parses itself (`CORE_TOOL_PARSERS`, e.g. `minimax_m1`): vLLM gets no tool parser, the raw
  text reaches the gateway, and `core_tool_parser` tells the adapter to constrain a named or
  "required" tool_choice to that format. enable_auto_tool_choice = the model has a
  `tool_parser` of either kind (so vLLM accepts "auto" and passes the text through).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TokenizerMode = Literal["auto", "hf", "slow", "mistral"]
ConfigFormat = Literal["auto", "hf", "mistral"]
LoadFormat = Literal["auto", "safetensors", "pt", "mistral", "dummy"]
DType = Literal["auto", "bfloat16", "float16", "float32"]
Executor = Literal["mp", "ray", "uni"]
ToolStrictLevel = Literal["auto", "function", "parameter"]

_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VLLMModelArgs(_Strict):
    """Checkpoint facts vLLM needs for a catalog model (all optional, vLLM's defaults)."""

    tokenizer_mode: TokenizerMode = "auto"
    config_format: ConfigFormat = "auto"
    load_format: LoadFormat = "auto"
    trust_remote_code: bool = False
    chat_template: str | None = Field(
        default=None, description="a Jinja template (file path or inline) replacing the model's"
    )
    max_model_len: int | None = Field(
        default=None, ge=16, description="serve a shorter context than the model's window"
    )


class VLLMDeploymentSettings(_Strict):
    """Operator knobs for one deployment on vLLM (`models[i].vllm` in the cluster file)."""

    model_path: str | None = Field(
        default=None,
        description="local weights folder; default: the model cache (modelyard models "
        "prepare), else the catalog's `weights` (a Hugging Face repo id)",
    )
    max_model_len: int | None = Field(default=None, ge=16)
    dtype: DType = "auto"
    gpu_memory_utilization: float = Field(default=0.90, gt=0.0, le=1.0)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=16)
    enforce_eager: bool = Field(
        default=False, description="skip graph capture/compilation (faster start, CPU/CI)"
    )
    seed: int = 0
    executor: Literal["auto", "mp", "ray", "uni"] = Field(
        default="auto", description="auto: ray when a replica spans several GPUs"
    )
    tool_strict_level: ToolStrictLevel = Field(
        default="parameter",
        description="pin tool-call argument schemas in structured output (vLLM "
        "--tool-strict-level); 'parameter' makes a named tool_choice return schema-valid "
        "arguments",
    )
    kv_events: bool = Field(default=True, description="publish KV cache events for the router")
    adapters: dict[str, str] = Field(
        default_factory=dict,
        description="LoRA adapters by name -> local folder; clients address them as "
        "'model:name'; loaded on first use, kept in an LRU of max_cpu_loras per replica",
    )
    max_cpu_loras: int | None = Field(default=None, ge=1)

    @field_validator("adapters")
    @classmethod
    def _adapter_names(cls, adapters: dict[str, str]) -> dict[str, str]:
        for name, path in adapters.items():
            if not _ADAPTER_NAME.match(name):
                raise ValueError(
                    f"adapter name {name!r} must be 1-64 characters of letters, digits, "
                    "'.', '_' or '-' (it follows ':' in the model name)"
                )
            if not path.strip():
                raise ValueError(f"adapter {name!r} needs a path")
        return adapters


class KVEventsArgs(_Strict):
    """vLLM's `KVEventsConfig` (ZMQ publisher)."""

    enable_kv_cache_events: bool = True
    publisher: Literal["zmq", "null"] = "zmq"
    endpoint: str = Field(description="ZMQ address the publisher binds or connects to")
    topic: str = "kv-events"


class VLLMEngineArgs(_Strict):
    """Exactly the `AsyncEngineArgs` a replica's engine is built from."""

    model: str
    served_model_name: str
    tokenizer_mode: TokenizerMode = "auto"
    config_format: ConfigFormat = "auto"
    load_format: LoadFormat = "auto"
    trust_remote_code: bool = False
    dtype: DType = "auto"
    max_model_len: int = Field(ge=16)
    tensor_parallel_size: int = Field(default=1, ge=1)
    pipeline_parallel_size: int = Field(default=1, ge=1)
    enable_expert_parallel: bool = False
    distributed_executor_backend: Executor | None = None
    quantization: str | None = None
    enable_prefix_caching: bool = True
    enable_lora: bool = False
    max_loras: int = Field(default=1, ge=1)
    max_lora_rank: int = Field(default=16, ge=1)
    max_cpu_loras: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float = Field(default=0.90, gt=0.0, le=1.0)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=16)
    enforce_eager: bool = False
    seed: int = 0
    kv_events_config: KVEventsArgs | None = None

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `vllm.engine.arg_utils.AsyncEngineArgs` (plain values)."""
        return self.model_dump(exclude={"kv_events_config"})


class VLLMServingArgs(_Strict):
    """Options of vLLM's OpenAI serving layer (chat templates, tool parsing, usage)."""

    served_model_name: str
    tool_call_parser: str | None = None
    enable_auto_tool_choice: bool = False
    core_tool_parser: str | None = Field(
        default=None,
        description="tool-call format the gateway parses from the text (not a vLLM parser); "
        "a named or 'required' tool_choice is constrained to it by structured output",
    )
    tool_strict_level: ToolStrictLevel = "parameter"
    reasoning_parser: str | None = None
    chat_template: str | None = None
    enable_prompt_tokens_details: bool = True
    adapters: dict[str, str] = Field(default_factory=dict)


class VLLMConfig(_Strict):
    engine: VLLMEngineArgs
    serving: VLLMServingArgs
    env: dict[str, str] = Field(
        default_factory=dict, description="environment the replica sets before starting vLLM"
    )
