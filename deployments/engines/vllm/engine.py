"""`VLLMEngine`: real vLLM (AsyncLLM + its OpenAI serving layer) behind `cluster.engine.Engine`.

Start: resolve the weights (deployment `vllm.model_path`, else the model cache prepared by
`modelyard models prepare`, else the catalog's `weights`), bind the KV-event subscriber on
loopback, build the typed config (`cluster.config.vllm_config.vllm_config_for`), start
`AsyncLLM` in a worker thread (it spawns the engine-core process and waits for it; the
event loop keeps serving meanwhile), then build the serving layer.

Generate: the `EngineRequest` becomes vLLM's own `ChatCompletionRequest` /
`CompletionRequest` (always streamed, with usage); vLLM renders the chat template, applies
tool parsers and structured output, and we map its stream events to `EngineChunk`s
(`deployments.engines.vllm.stream`). Errors vLLM can only judge itself (the tokenised
prompt is too long, an unknown adapter, a bad tool_choice) are raised, typed, before any
chunk.

Release: `abort(request_id)`, closing the stream or cancelling its consumer all abort the
vLLM request at once (its KV blocks and batch slot are freed); an aborted stream just ends.

Observability: `stats()` from vLLM's scheduler statistics; `kv_events()` from vLLM's ZMQ
KV-event publisher (models with prefix caching); `metrics_text()` is vLLM's `vllm:*`
Prometheus metrics of this replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from pathlib import Path

from vllm.config.kv_events import KVEventsConfig
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.entrypoints.serve.engine.protocol import ErrorResponse
from vllm.v1.engine.async_llm import AsyncLLM

from cluster.config.settings import ServedModel
from cluster.config.vllm_args import VLLMConfig
from cluster.config.vllm_config import vllm_config_for
from cluster.engine import EngineChunk, EngineRequest, EngineStats, KVEventBatch
from cluster.errors import EngineUnavailable, ModelyardError
from cluster.kv_events import Fanout, KVEventSubscriber
from cluster.models.cache import ModelCache
from deployments.engines.vllm.adapters import AdapterLoader
from deployments.engines.vllm.errors import error_from_exception, error_from_response
from deployments.engines.vllm.metrics import engine_metrics_text
from deployments.engines.vllm.requests import chat_request, completion_request
from deployments.engines.vllm.serving import ServingLayer, check_tool_parser
from deployments.engines.vllm.stats import StatsCollector
from deployments.engines.vllm.stream import StreamMapper

log = logging.getLogger(__name__)


def resolve_model_path(model: ServedModel, cache: ModelCache) -> str:
    """deployment `vllm.model_path` > prepared folder in the model cache > catalog weights."""
    settings = model.deployment.vllm
    if settings is not None and settings.model_path:
        return str(Path(settings.model_path).expanduser())
    prepared = cache.lookup(model.spec.id)
    if prepared is not None:
        return prepared.path
    return model.spec.weights


class VLLMEngine:
    name = "vllm"
    simulated = False

    def __init__(
        self,
        model: ServedModel,
        *,
        replica_id: str,
        cache: ModelCache | None = None,
        environ: Mapping[str, str] | None = None,
        ray_bundle_indices: Sequence[int] | None = None,
    ) -> None:
        self.model = model
        self.replica_id = replica_id
        self._cache = cache or ModelCache.from_env(environ)
        self._bundles = list(ray_bundle_indices) if ray_bundle_indices else None
        self._stats = StatsCollector()
        self._fanout = Fanout()
        self._subscriber: KVEventSubscriber | None = None
        self._pump: asyncio.Task[None] | None = None
        self._llm: AsyncLLM | None = None
        self._serving: ServingLayer | None = None
        self._adapters: AdapterLoader | None = None
        self.config: VLLMConfig | None = None
        self._live: dict[str, str] = {}  # our request id -> vLLM's external request id
        self._aborted: set[str] = set()
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._llm is not None:
            return
        model_path = resolve_model_path(self.model, self._cache)
        wants_events = self.model.spec.prefix_caching and (
            self.model.deployment.vllm is None or self.model.deployment.vllm.kv_events
        )
        if wants_events:
            self._subscriber = KVEventSubscriber(replica_id=self.replica_id)
        try:
            llm, config = await self._start_engine(model_path)
        except BaseException:
            self._close_events()
            raise
        try:
            self._serving = ServingLayer(llm, config.serving, model_path=model_path)
        except Exception as err:
            await asyncio.to_thread(llm.shutdown)
            self._close_events()
            raise EngineUnavailable(
                f"vLLM's serving layer could not start for {self.model.id!r}: {err}"
            ) from err
        self._llm, self.config = llm, config
        cache_config = llm.vllm_config.cache_config
        self._stats.kv_blocks_total = int(cache_config.num_gpu_blocks or 0)
        self._stats.block_size = int(cache_config.block_size)
        self._adapters = AdapterLoader(
            self._serving.models, config.serving.adapters, model_id=self.model.id
        )
        if self._subscriber is not None:
            self._pump = asyncio.create_task(self._pump_events(self._subscriber))

    async def _start_engine(self, model_path: str) -> tuple[AsyncLLM, VLLMConfig]:
        """Typed config -> checks -> AsyncLLM (in a thread: it waits for its processes)."""
        config = vllm_config_for(
            self.model,
            model_path=model_path,
            kv_events_endpoint=self._subscriber.endpoint if self._subscriber else None,
        )
        check_tool_parser(config.serving, model_id=self.model.id)
        env = dict(config.env)
        if self._bundles and "VLLM_RAY_BUNDLE_INDICES" in env:
            env["VLLM_RAY_BUNDLE_INDICES"] = ",".join(str(i) for i in self._bundles)
        os.environ.update(env)
        events = config.engine.kv_events_config
        try:
            args = AsyncEngineArgs(
                **config.engine.engine_kwargs(),
                kv_events_config=KVEventsConfig(**events.model_dump()) if events else None,
            )
            llm = await asyncio.to_thread(
                AsyncLLM.from_engine_args, args, stat_loggers=[self._stats.factory]
            )
        except Exception as err:
            raise EngineUnavailable(
                f"vLLM could not start {self.model.id!r} from {model_path!r}: {err}"
            ) from err
        return llm, config

    async def _pump_events(self, subscriber: KVEventSubscriber) -> None:
        try:
            async for batch in subscriber.batches():
                self._fanout.publish(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("KV event subscriber of %s stopped", self.replica_id)

    def _close_events(self) -> None:
        self._fanout.close()
        if self._subscriber is not None:
            self._subscriber.close()
            self._subscriber = None

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for request_id in list(self._live):
            await self.abort(request_id)
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        self._close_events()
        llm, self._llm = self._llm, None
        if llm is not None:
            await asyncio.to_thread(llm.shutdown)

    async def check_health(self) -> None:
        llm = self._require()
        try:
            await llm.check_health()
        except Exception as err:
            raise EngineUnavailable(
                f"vLLM engine of {self.replica_id} is unhealthy: {err}"
            ) from err

    # -- requests ----------------------------------------------------------------------

    def _require(self) -> AsyncLLM:
        if self._llm is None or self._stopped:
            raise EngineUnavailable(f"the vLLM engine of {self.model.id!r} is not running")
        return self._llm

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        return self._generate(request)

    async def _open(self, request: EngineRequest) -> tuple[AsyncGenerator[str, None], str]:
        """Ask vLLM for the stream; typed errors for everything it refuses up front."""
        assert self._serving is not None and self._adapters is not None
        param = "messages" if request.messages is not None else "prompt"
        adapter = await self._adapters.resolve(request.adapter)
        name = adapter or self.model.id
        result: object
        try:
            if request.messages is not None:
                self._live[request.request_id] = f"chatcmpl-{request.request_id}"
                core_tools = self.config.serving.core_tool_parser if self.config else None
                result = await self._serving.chat.create_chat_completion(
                    chat_request(request, model_name=name, core_tool_parser=core_tools)
                )
            else:
                self._live[request.request_id] = f"cmpl-{request.request_id}-0"
                result = await self._serving.completion.create_completion(
                    completion_request(request, model_name=name)
                )
        except ModelyardError:
            raise
        except Exception as err:
            raise error_from_exception(err, prompt_param=param) from None
        if isinstance(result, ErrorResponse):
            raise error_from_response(result, prompt_param=param)
        if not isinstance(result, AsyncGenerator):
            raise ModelyardError("vLLM answered a streamed request without a stream")
        return result, param

    async def _generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        self._require()
        if request.request_id in self._live:
            raise ModelyardError(f"request id {request.request_id!r} is already running")
        finished = False
        stream: AsyncGenerator[str, None] | None = None
        try:
            stream, param = await self._open(request)
            mapper = StreamMapper(replica_id=self.replica_id, prompt_param=param)
            async for event in stream:
                for chunk in mapper.feed(event):
                    yield chunk
                if request.request_id in self._aborted:
                    break
            finished = True
            if request.request_id in self._aborted or mapper.aborted:
                return
            final = mapper.finish()
            if final is not None:
                yield final
        finally:
            external = self._live.pop(request.request_id, None)
            self._aborted.discard(request.request_id)
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.aclose()
            if not finished and external is not None and self._llm is not None:
                await asyncio.shield(self._llm.abort(external))

    async def abort(self, request_id: str) -> None:
        external = self._live.get(request_id)
        if external is None or self._llm is None:
            return
        self._aborted.add(request_id)
        await self._llm.abort(external)

    # -- observability -------------------------------------------------------------------

    def stats(self) -> EngineStats:
        """vLLM's scheduler numbers, bounded by our in-flight requests (aborted ones excluded:
        `abort` has already told vLLM to free them)."""
        in_flight = sum(1 for request_id in self._live if request_id not in self._aborted)
        return self._stats.snapshot(in_flight)

    def kv_events(self) -> AsyncIterator[KVEventBatch]:
        return self._fanout.subscribe()

    def metrics_text(self) -> str:
        """This replica's `vllm:*` Prometheus metrics (each sample labelled with the replica)."""
        return engine_metrics_text(self.replica_id)

    @property
    def adapters(self) -> AdapterLoader:
        if self._adapters is None:
            raise EngineUnavailable("the vLLM engine is not started")
        return self._adapters
