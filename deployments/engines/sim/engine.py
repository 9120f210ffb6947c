"""`SimEngine`: the simulator behind the `cluster.engine.Engine` protocol.

One asyncio task drives the pure `Scheduler`: it runs a step, sleeps the step's simulated
duration on the `Clock`, then delivers what the step produced — one chunk per generated
token, a final chunk with `finish_reason` and `usage` — and publishes the step's KV events
as one `KVEventBatch` (sequence numbers increase by one per batch). It never imports Ray or
vLLM. Every answer it gives is simulated (`simulated == True`); the gateway labels it so.

`generate()` validates synchronously, before returning the stream: a missing engine start,
an unknown adapter (`ModelNotFound`), a context overflow (`ContextLengthExceeded`: the
prompt plus `max_tokens` exceeds the context window, or the prompt leaves no room for one
token, or the request could never fit in this replica's KV cache), a bad `tool_choice`,
and `logprobs` / `logit_bias`, which a simulator has nothing to honour them with
(`InvalidRequest` naming the field), raise before any chunk. A prompt given as token ids is
taken as those tokens. The request joins the scheduler when the stream
is first iterated; closing or cancelling the stream, or `abort()`, removes it and frees
its KV blocks (an aborted stream just ends). `shutdown()` ends open streams with
`EngineUnavailable`. `sim.stall_marker` freezes the step loop for fault-injection tests
(`faults.StallFault`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cluster.config import ServedModel
from cluster.engine import EngineChunk, EngineRequest, EngineStats, KVEvent, KVEventBatch, Usage
from cluster.errors import (
    ContextLengthExceeded,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    ModelyardError,
)
from deployments.engines.sim.clock import Clock, RealClock
from deployments.engines.sim.faults import StallFault
from deployments.engines.sim.kv_cache import request_extra_keys
from deployments.engines.sim.scheduler import Scheduler, SimSequence, StepResult
from deployments.engines.sim.text import OutputPlan, plan_output
from deployments.engines.sim.timing import Efficiency
from deployments.engines.sim.tokenizer import SimTokenizer, render_chat

EVENT_BACKLOG = 10_000  # batches kept per kv_events() subscriber; the oldest are dropped

_Item = EngineChunk | ModelyardError | None


@dataclass(slots=True)
class _Live:
    request: EngineRequest
    seq: SimSequence
    plan: OutputPlan
    queue: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    cached_tokens: int = 0
    sent: int = 0


class SimEngine:
    def __init__(
        self,
        model: ServedModel,
        *,
        replica_id: str,
        clock: Clock | None = None,
        efficiency: Efficiency | None = None,
    ) -> None:
        self.model = model
        self.replica_id = replica_id
        self.settings = model.deployment.sim
        spec = model.spec
        self._clock: Clock = clock or RealClock(self.settings.speedup)
        self._pending_events: list[KVEvent] = []
        self._scheduler = Scheduler.for_model(
            spec, self.settings, on_events=self._pending_events.extend, efficiency=efficiency
        )
        self._cache = self._scheduler.cache
        self._tokenizer = SimTokenizer()
        self._live: dict[str, _Live] = {}
        self._subscribers: list[asyncio.Queue[KVEventBatch | None]] = []
        self._event_seq = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._stall = StallFault(self.settings.stall_marker)  # fault injection (tests)

    # ---- identity --------------------------------------------------------------------

    @property
    def name(self) -> str:
        return "sim"

    @property
    def simulated(self) -> bool:
        return True

    @property
    def max_context_tokens(self) -> int:
        """Tokens one request may hold: the context window, capped by the KV capacity."""
        return min(self.model.spec.context_window, self._scheduler.max_tokens_per_sequence())

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise EngineUnavailable(f"simulator replica {self.replica_id} was shut down")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sim-engine-{self.replica_id}")

    async def check_health(self) -> None:
        if self._closed:
            raise EngineUnavailable(f"simulator replica {self.replica_id} is shut down")
        if self._task is None:
            raise EngineUnavailable(f"simulator replica {self.replica_id} is not started")
        if self._task.done():
            raise EngineUnavailable(f"simulator replica {self.replica_id}: its loop stopped")

    async def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all(EngineUnavailable(f"simulator replica {self.replica_id} shut down"))
        for queue in self._subscribers:
            self._offer(queue, None)

    # ---- requests --------------------------------------------------------------------

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        live = self._prepare(request)
        return self._stream(live)

    async def abort(self, request_id: str) -> None:
        live = self._live.pop(request_id, None)
        if live is not None:
            self._scheduler.abort(request_id)
            live.queue.put_nowait(None)
            self._wake.set()

    def stats(self) -> EngineStats:
        return EngineStats(
            running=self._scheduler.num_running,
            waiting=self._scheduler.num_waiting,
            kv_usage=self._cache.usage,
            prefix_cache_queries=self._cache.query_tokens,
            prefix_cache_hits=self._cache.hit_tokens,
            kv_blocks_total=self._cache.capacity,
            block_size=self._cache.block_size,
        )

    def kv_events(self) -> AsyncIterator[KVEventBatch]:
        """Batches published from now on (subscribes at call time). None for models
        without prefix caching; the iterator ends at shutdown."""
        queue: asyncio.Queue[KVEventBatch | None] = asyncio.Queue(maxsize=EVENT_BACKLOG)
        if self._closed:
            queue.put_nowait(None)
        else:
            self._subscribers.append(queue)
        return self._event_stream(queue)

    # ---- validation ------------------------------------------------------------------

    def _prepare(self, request: EngineRequest) -> _Live:
        spec = self.model.spec
        if self._closed or self._task is None or self._task.done():
            raise EngineUnavailable(f"simulator replica {self.replica_id} is not serving")
        if request.request_id in self._live:
            raise InvalidRequest(f"request id {request.request_id!r} is already in flight")
        if request.adapter is not None and spec.lora is None:
            raise ModelNotFound(
                f"the model {spec.id!r} serves no LoRA adapters, so adapter "
                f"{request.adapter!r} does not exist",
                param="model",
            )
        self._refuse_unsimulated(request)
        param = "prompt" if request.messages is None else "messages"
        if request.prompt_token_ids is not None:
            ids = list(request.prompt_token_ids)
        else:
            text = prompt_text(request)
            self._stall.inspect(request.request_id, text)
            ids = self._tokenizer.encode(text)
        if not ids:  # as vLLM: "The decoder prompt cannot be empty"
            raise InvalidRequest(f"The {param} is empty; it needs at least one token.", param=param)
        limit = self._check_length(len(ids), request.max_tokens, param)
        plan = plan_output(
            request,
            prompt_ids=ids,
            limit=limit,
            seed=self.settings.seed,
            think_tags=spec.reasoning_parser == "think_tags",
            text_tool_calls=spec.core_tool_parser == "minimax_m1",
        )
        extra = request_extra_keys(request.adapter, request.cache_salt)
        bs = self._cache.block_size
        hashes = self._cache.hash_tokens(ids, extra) if spec.prefix_caching else []
        seq = SimSequence(
            seq_id=request.request_id,
            prompt_tokens=len(ids),
            max_output_tokens=len(plan.tokens),
            block_hashes=hashes,
            block_token_ids=ids[: len(hashes) * bs],
            lora_name=request.adapter,
            cache_salt=request.cache_salt,
        )
        return _Live(request=request, seq=seq, plan=plan)

    @staticmethod
    def _refuse_unsimulated(request: EngineRequest) -> None:
        """What the simulator cannot honour is refused, never silently ignored."""
        if request.sampling.logprobs is not None:
            raise InvalidRequest(
                "'logprobs' are not available on simulated models (the simulator has no "
                "probabilities to report); use a vLLM model.",
                param="logprobs",
            )
        if request.sampling.logit_bias:
            raise InvalidRequest(
                "'logit_bias' is not available on simulated models (the simulator samples "
                "no logits); use a vLLM model.",
                param="logit_bias",
            )

    def _check_length(self, prompt: int, max_tokens: int | None, param: str) -> int:
        """Raise ContextLengthExceeded with the numbers; return the output token limit."""
        window = self.model.spec.context_window
        asked = prompt + (max_tokens or 0)
        if asked > window or prompt >= window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {asked} tokens ({prompt} in the {param}, {max_tokens or 0} in "
                "the completion). Please reduce the length of the input or max_tokens.",
                param=param,
            )
        room = self._scheduler.max_tokens_per_sequence()
        if prompt + (max_tokens or 1) > room:
            raise ContextLengthExceeded(
                f"This replica's KV cache holds {room} tokens per request; the request needs "
                f"{prompt + (max_tokens or 1)} ({prompt} in the {param}, {max_tokens or 1} in "
                "the completion).",
                param=param,
            )
        return max_tokens or (self.max_context_tokens - prompt)

    # ---- streams ---------------------------------------------------------------------

    async def _stream(self, live: _Live) -> AsyncIterator[EngineChunk]:
        request_id = live.request.request_id
        if self._closed:
            raise EngineUnavailable(f"simulator replica {self.replica_id} shut down")
        if request_id in self._live:
            raise InvalidRequest(f"request id {request_id!r} is already in flight")
        self._live[request_id] = live
        self._scheduler.add(live.seq)
        self._wake.set()
        try:
            while True:
                item = await live.queue.get()
                if item is None:
                    return
                if isinstance(item, ModelyardError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if self._live.get(request_id) is live:
                del self._live[request_id]
                self._scheduler.abort(request_id)
                self._wake.set()

    async def _event_stream(
        self, queue: asyncio.Queue[KVEventBatch | None]
    ) -> AsyncIterator[KVEventBatch]:
        try:
            while True:
                batch = await queue.get()
                if batch is None:
                    return
                yield batch
        finally:
            if queue in self._subscribers:
                self._subscribers.remove(queue)

    # ---- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        """Step, sleep until the step's simulated end, deliver. Sleeping to a deadline
        (rather than for each duration) absorbs the host's own time per step; when the host
        falls behind, the debt is dropped instead of being caught up in a burst."""
        try:
            deadline = self._clock.now()
            while not self._closed:
                await self._stall.hold()
                if not self._scheduler.has_work:
                    await self._idle()
                    deadline = self._clock.now()
                    continue
                result = self._scheduler.step()
                if result.scheduled_tokens == 0 and not result.finished:
                    # Nothing could be scheduled (cannot happen with a consistent cache):
                    # wait for a new request or an abort instead of spinning.
                    await self._idle()
                    deadline = self._clock.now()
                    continue
                deadline += result.duration_s
                delay = deadline - self._clock.now()
                if delay < 0:
                    deadline, delay = self._clock.now(), 0.0
                await self._clock.sleep(delay)
                self._deliver(result)
                self._publish()
                self._stall.after_step(result.emitted)
        except Exception as exc:  # the loop must not die silently: fail every stream
            self._fail_all(EngineUnavailable(f"simulator loop failed: {exc!r}"))
            raise

    async def _idle(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    def _deliver(self, result: StepResult) -> None:
        for admitted in result.admitted:
            live = self._live.get(admitted.seq_id)
            if live is not None and not admitted.resumed:
                live.cached_tokens = admitted.cached_tokens
        for seq_id, count in result.emitted.items():
            live = self._live.get(seq_id)
            if live is None:
                continue
            for _ in range(count):
                token = live.plan.tokens[live.sent]
                live.queue.put_nowait(
                    EngineChunk(
                        text=token.text,
                        tool_calls=[token.tool_call] if token.tool_call else [],
                        replica_id=self.replica_id if live.sent == 0 else None,
                    )
                )
                live.sent += 1
        for seq_id in result.finished:
            live = self._live.pop(seq_id, None)
            if live is None:
                continue
            usage = Usage(
                prompt_tokens=live.seq.prompt_tokens,
                completion_tokens=live.sent,
                cached_tokens=live.cached_tokens,
            )
            live.queue.put_nowait(EngineChunk(finish_reason=live.plan.finish_reason, usage=usage))

    def _publish(self) -> None:
        if not self._pending_events:
            return
        batch = KVEventBatch(
            replica_id=self.replica_id,
            seq=self._event_seq,
            timestamp=time.time(),
            events=list(self._pending_events),
        )
        self._pending_events.clear()
        self._event_seq += 1
        for queue in self._subscribers:
            self._offer(queue, batch)

    @staticmethod
    def _offer(queue: asyncio.Queue[KVEventBatch | None], item: KVEventBatch | None) -> None:
        if queue.full():
            queue.get_nowait()  # drop the oldest; the gap shows in `seq`
        queue.put_nowait(item)

    def _fail_all(self, error: ModelyardError) -> None:
        for request_id, live in list(self._live.items()):
            self._scheduler.abort(request_id)
            live.queue.put_nowait(error)
        self._live.clear()


def prompt_text(request: EngineRequest) -> str:
    """The text the simulator tokenizes for a request: the chat template, or the prompt."""
    if request.messages is not None:
        return render_chat(request.messages, request.tools)
    if request.prompt is not None:
        return request.prompt
    raise InvalidRequest("a request needs messages or a prompt", param="messages")
