"""LoRA adapters of one replica: configured by local path, loaded on first use.

Clients address an adapter as `model:adapter`; the gateway passes `adapter` on the
`EngineRequest`. An adapter that is not configured for this model is `ModelNotFound`
(before vLLM sees the request). A configured one is registered with vLLM's serving layer
the first time it is asked for (`load_lora_adapter`, which also loads it into the engine);
after that vLLM itself keeps the adapters in an LRU of `max_cpu_loras` per replica and at
most `max_loras` in one batch, reloading an evicted adapter from its path when needed.
Loads of one adapter are serialised here, so concurrent first requests load it once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from vllm.entrypoints.openai.models.serving import OpenAIServingModels
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.entrypoints.serve.lora.protocol import LoadLoRAAdapterRequest

from cluster.errors import ModelNotFound
from deployments.engines.vllm.errors import error_from_response


class AdapterLoader:
    def __init__(
        self, models: OpenAIServingModels, adapters: Mapping[str, str], *, model_id: str
    ) -> None:
        self._models = models
        self._paths = dict(adapters)
        self._model_id = model_id
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def configured(self) -> list[str]:
        return sorted(self._paths)

    @property
    def loaded(self) -> list[str]:
        return sorted(self._models.lora_requests)

    async def resolve(self, name: str | None) -> str | None:
        """The name vLLM serves the adapter under (loading it if needed); None for the base."""
        if name is None:
            return None
        path = self._paths.get(name)
        if path is None:
            known = ", ".join(self.configured) or "none"
            raise ModelNotFound(
                f"adapter {name!r} is not configured for model {self._model_id!r} "
                f"(configured: {known})",
                param="model",
            )
        if name in self._models.lora_requests:
            return name
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            if name not in self._models.lora_requests:
                result = await self._models.load_lora_adapter(
                    LoadLoRAAdapterRequest(lora_name=name, lora_path=path)
                )
                if isinstance(result, ErrorResponse):
                    raise error_from_response(result, prompt_param="model")
        return name
