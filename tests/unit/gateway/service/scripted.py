"""A scripted engine (follows `cluster.engine.Engine` honestly) and a service rig over it.

`ScriptedEngine` plays back chunks chosen per request, so service tests can pin exact
chunkings (split `<think>` tags, tool-call pieces, errors mid-stream) that the simulator
would only produce by chance. It records every request and which streams are still open, so
tests can see that closing a stream releases it in the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cluster.config import ModelDeployment, ServedModel, TelemetrySettings, load_builtin_catalog
from cluster.engine import EngineChunk, EngineRequest, EngineStats, KVEventBatch, Usage
from cluster.errors import EngineUnavailable, ModelyardError
from cluster.gateway.service import EngineBackend, GatewayService
from cluster.gateway.telemetry import (
    GatewayMetrics,
    RequestObserver,
    build_tracer_provider,
    tracer_from,
)

QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
DEVSTRAL = "mistralai/devstral-small"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
MISTRAL_ALIAS = "casperhansen-mistral-small-24b-instruct-2501-awq"

# What a script returns for one request: the chunks to play, each an EngineChunk or an
# error to raise at that point (an error first = raised before the first chunk).
Step = EngineChunk | ModelyardError | Exception
Script = Callable[[EngineRequest], list[Step]]


def served_model(model_id: str, engine: str = "sim") -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None, model_id
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, engine=engine))  # type: ignore[arg-type]


def text_chunks(
    *pieces: str, prompt: int = 10, cached: int = 0, finish: str = "stop"
) -> list[Step]:
    """One chunk per piece, then the final chunk with usage (one token per piece)."""
    chunks: list[Step] = [EngineChunk(text=p) for p in pieces]
    chunks.append(
        EngineChunk(
            finish_reason=finish,  # type: ignore[arg-type]
            usage=Usage(prompt_tokens=prompt, completion_tokens=len(pieces), cached_tokens=cached),
        )
    )
    return chunks


@dataclass
class ScriptedEngine:
    script: Script
    healthy: bool = True
    gate: asyncio.Event | None = None  # when set, each chunk after the first waits for it
    requests: list[EngineRequest] = field(default_factory=list)
    open_streams: set[str] = field(default_factory=set)
    closed_streams: list[str] = field(default_factory=list)
    opened: asyncio.Event = field(default_factory=asyncio.Event)  # set when a stream starts

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def simulated(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        self.requests.append(request)
        return self._play(request, self.script(request))

    async def _play(self, request: EngineRequest, steps: list[Step]) -> AsyncIterator[EngineChunk]:
        self.open_streams.add(request.request_id)
        self.opened.set()
        try:
            for i, step in enumerate(steps):
                if isinstance(step, Exception):
                    raise step
                if i > 0 and self.gate is not None:
                    await self.gate.wait()
                await asyncio.sleep(0)
                yield step
        finally:
            self.open_streams.discard(request.request_id)
            self.closed_streams.append(request.request_id)

    async def abort(self, request_id: str) -> None:
        self.open_streams.discard(request_id)

    def stats(self) -> EngineStats:
        return EngineStats(running=len(self.open_streams), waiting=0, kv_usage=0.0)

    async def _no_events(self) -> AsyncIterator[KVEventBatch]:
        return
        yield  # pragma: no cover

    def kv_events(self) -> AsyncIterator[KVEventBatch]:
        return self._no_events()

    async def check_health(self) -> None:
        if not self.healthy:
            raise EngineUnavailable("scripted engine marked unhealthy")

    async def shutdown(self) -> None:
        return None


@dataclass
class Rig:
    """A GatewayService over scripted engines, with its metrics and captured spans."""

    service: GatewayService
    engines: dict[str, ScriptedEngine]
    metrics: GatewayMetrics
    spans: InMemorySpanExporter

    def engine(self, model_id: str) -> ScriptedEngine:
        return self.engines[model_id]

    def requests_total(self, model: str, endpoint: str, status: str) -> float:
        return self.metrics.sample(
            "modelyard_requests_total", {"model": model, "endpoint": endpoint, "status": status}
        )


def build_rig(
    script: Script,
    *,
    models: tuple[str, ...] = (QWEN, MINIMAX, DEVSTRAL, MISTRAL),
    engine_kind: str = "sim",
    timeout_s: float | None = None,
) -> Rig:
    served = [served_model(m, engine_kind) for m in models]
    engines = {m.id: ScriptedEngine(script) for m in served}
    metrics = GatewayMetrics()
    spans = InMemorySpanExporter()
    tracer = tracer_from(build_tracer_provider(TelemetrySettings(), exporter=spans))
    service = GatewayService(
        served, EngineBackend(engines), RequestObserver(metrics, tracer), timeout_s=timeout_s
    )
    return Rig(service, engines, metrics, spans)
