"""`ModelBackend`: how the core reaches a served model's engine.

Implementations:
- `EngineBackend` (here): drives `cluster.engine.Engine` objects in this process — unit
  tests, `modelyard sim serve`.
- `deployments.handle_backend.HandleBackend`: Ray Serve deployment handles.

`generate` yields the engine's chunks for one `EngineRequest` (one choice) and raises typed
`cluster.errors` errors; a chunk that carries `error` (a stream that crossed a process
boundary) is raised as that error, never yielded. Closing the iterator early releases the
request in the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol, runtime_checkable

from cluster.config.settings import ServedModel
from cluster.engine import Engine, EngineChunk, EngineRequest
from cluster.errors import ModelNotFound, ModelyardError
from cluster.gateway.telemetry.exposition import merge_expositions


@runtime_checkable
class ModelBackend(Protocol):
    def generate(self, model: ServedModel, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Chunks of one generation; the last has `finish_reason` and `usage`."""
        ...

    async def health(self) -> dict[str, bool]:
        """Served model id -> whether it can serve now."""
        ...


class EngineBackend:
    """In-process backend over started engines, keyed by the served model's public id."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self._engines = dict(engines)

    def _engine(self, model: ServedModel) -> Engine:
        engine = self._engines.get(model.id)
        if engine is None:
            raise ModelNotFound(f"The model '{model.id}' has no engine here.", param="model")
        return engine

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncIterator[EngineChunk]:
        stream = self._engine(model).generate(request)
        try:
            async for chunk in stream:
                if chunk.error is not None:
                    chunk.error.raise_()
                yield chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def health(self) -> dict[str, bool]:
        status: dict[str, bool] = {}
        for model_id, engine in self._engines.items():
            try:
                await engine.check_health()
            except ModelyardError:
                status[model_id] = False
            else:
                status[model_id] = True
        return status

    async def engine_metrics(self) -> str:
        """The engines' own Prometheus metrics (vLLM's `vllm:*`), merged; '' if none."""
        texts = []
        for engine in self._engines.values():
            metrics_text = getattr(engine, "metrics_text", None)
            if callable(metrics_text):
                texts.append(str(metrics_text()))
        return merge_expositions(texts)[0]

    async def start(self) -> None:
        for engine in self._engines.values():
            await engine.start()

    async def shutdown(self) -> None:
        for engine in self._engines.values():
            await engine.shutdown()
