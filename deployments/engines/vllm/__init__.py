"""The real engine: vLLM's AsyncLLM and OpenAI serving layer behind `cluster.engine.Engine`.

This package is the only place in modelyard that imports vLLM; `deployments.engines.factory`
imports it lazily, only for deployments with `engine: vllm`.
"""

from deployments.engines.vllm.engine import VLLMEngine, resolve_model_path

__all__ = ["VLLMEngine", "resolve_model_path"]
