"""One replica's complete vLLM input, derived from its catalog entry and deployment.

`vllm_config_for(served)` applies the derivations documented in `cluster.config.vllm_args`
(whose argument models it fills); `check_deployment(served)` holds the cross-field rules the
loader checks. Kept apart from the argument models so that the catalog and the cluster
settings (which embed those models) do not import `ServedModel`'s module back.
"""

from __future__ import annotations

from cluster.config.settings import ServedModel
from cluster.config.vllm_args import (
    Executor,
    KVEventsArgs,
    VLLMConfig,
    VLLMDeploymentSettings,
    VLLMEngineArgs,
    VLLMServingArgs,
)


def check_deployment(served: ServedModel) -> None:
    """Cross-field rules between a catalog entry and its deployment; ValueError names the key.

    Called by the config loader so that these fail at load, not at replica start.
    """
    settings = served.deployment.vllm
    if settings is None:
        return
    if settings.adapters and served.spec.lora is None:
        raise ValueError(
            f"vllm.adapters: model {served.spec.id!r} does not serve LoRA adapters "
            "(its catalog entry has no `lora`)"
        )
    window = served.spec.context_window
    if settings.max_model_len is not None and settings.max_model_len > window:
        raise ValueError(
            f"vllm.max_model_len: {settings.max_model_len} exceeds the model's context "
            f"window ({window})"
        )


def _executor(settings: VLLMDeploymentSettings, gpus: int) -> Executor | None:
    if settings.executor != "auto":
        return settings.executor
    return "ray" if gpus > 1 else None


def vllm_config_for(
    served: ServedModel, *, model_path: str | None = None, kv_events_endpoint: str | None = None
) -> VLLMConfig:
    """The full engine + serving configuration of one replica of `served`.

    `model_path` overrides where the weights are read (default: the deployment's
    `model_path`, else the catalog's `weights`); `kv_events_endpoint` turns on KV event
    publishing to that ZMQ address (only for models with prefix caching, and when the
    deployment leaves `kv_events` on).
    """
    spec, deployment = served.spec, served.deployment
    settings = deployment.vllm or VLLMDeploymentSettings()
    model_args = spec.vllm
    par = spec.parallelism
    max_len = settings.max_model_len or model_args.max_model_len or spec.context_window
    events = None
    if kv_events_endpoint is not None and settings.kv_events and spec.prefix_caching:
        events = KVEventsArgs(endpoint=kv_events_endpoint)
    lora = spec.lora
    engine = VLLMEngineArgs(
        model=model_path or settings.model_path or spec.weights,
        served_model_name=spec.id,
        tokenizer_mode=model_args.tokenizer_mode,
        config_format=model_args.config_format,
        load_format=model_args.load_format,
        trust_remote_code=model_args.trust_remote_code,
        dtype=settings.dtype,
        max_model_len=min(max_len, spec.context_window),
        tensor_parallel_size=par.tensor,
        pipeline_parallel_size=par.pipeline,
        enable_expert_parallel=par.expert,
        distributed_executor_backend=_executor(settings, par.gpus),
        quantization=spec.quantization,
        enable_prefix_caching=spec.prefix_caching,
        enable_lora=lora is not None,
        max_loras=lora.max_loras if lora else 1,
        max_lora_rank=lora.max_lora_rank if lora else 16,
        max_cpu_loras=settings.max_cpu_loras if lora else None,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        max_num_seqs=settings.max_num_seqs,
        max_num_batched_tokens=settings.max_num_batched_tokens,
        enforce_eager=settings.enforce_eager,
        seed=settings.seed,
        kv_events_config=events,
    )
    serving = VLLMServingArgs(
        served_model_name=spec.id,
        tool_call_parser=spec.vllm_tool_parser,
        enable_auto_tool_choice=spec.tool_parser is not None,
        core_tool_parser=spec.core_tool_parser,
        tool_strict_level=settings.tool_strict_level,
        reasoning_parser=None,
        chat_template=model_args.chat_template,
        adapters=dict(settings.adapters) if lora else {},
    )
    env: dict[str, str] = {}
    if engine.distributed_executor_backend == "ray" and deployment.reserve_gpus:
        # GPU ranks sit in bundles 1..gpus of the replica's placement group (bundle 0 is
        # the replica actor's CPU bundle; see cluster.placement).
        env["VLLM_RAY_BUNDLE_INDICES"] = ",".join(str(i) for i in range(1, par.gpus + 1))
    return VLLMConfig(engine=engine, serving=serving, env=env)
