"""The shared Engine contract: every `cluster.engine.Engine` must pass these tests.

Use it by subclassing `EngineContract` in a test module and providing a `contract` fixture
(any scope) that yields a started engine wrapped in a `ContractContext`, and shuts it down
afterwards:

    class TestMyEngineContract(EngineContract):
        @pytest.fixture
        async def contract(self) -> AsyncIterator[ContractContext]:
            engine = MyEngine(model, replica_id="r0")
            await engine.start()
            yield ContractContext.for_model(engine, model)
            await engine.shutdown()

An engine that is slow to start can be shared by the whole class (the suite uses fresh
prompts per test, so tests stay independent):

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def shared() -> AsyncIterator[ContractContext]: ...   # start once, yield, shut down

    @pytest.mark.asyncio(loop_scope="module")
    class TestMyEngineContract(EngineContract):
        @pytest.fixture
        def contract(self, shared: ContractContext) -> ContractContext:
            return shared

The suite asserts structure, counts, caching and resource release — never generated text.
Requests use fresh random prefixes, so an engine shared by several tests stays valid.

What an engine promises:
- a stream ends with exactly one final chunk, carrying `finish_reason` and `usage`; no
  chunk before it has either; the first chunk names the replica;
- `completion_tokens` equals the content chunks streamed (when `one_chunk_per_token`) and
  never exceeds `max_tokens`; reaching `max_tokens` ends with "length";
- a long prompt prefix sent again is served partly from the prefix cache (`cached_tokens`
  > 0, whole blocks); with prefix caching off, `cached_tokens` is always 0 and no KV events
  are published;
- a context overflow raises `ContextLengthExceeded` (param "messages"/"prompt") and an unknown
  adapter `ModelNotFound`, before any chunk (either when `generate` is called or at the
  first `__anext__`);
- `abort(request_id)`, closing the stream, or cancelling its consumer frees the request:
  `stats().running` and `.waiting` return to 0 (by the time the call returns, unless the
  context says `release_is_immediate=False`) and the aborted stream ends;
- `kv_events()` (subscribed when called) yields `stored` events after a request;
- a named `tool_choice` yields a tool call of that function whose arguments parse as a
  JSON object with the schema's required properties;
- concurrent requests all complete.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from cluster.api.messages import (
    FunctionDefinition,
    Message,
    NamedFunction,
    NamedToolChoice,
    SystemMessage,
    Tool,
    UserMessage,
)
from cluster.config import ServedModel
from cluster.engine import Engine, EngineChunk, EngineRequest, KVEventBatch, Usage
from cluster.errors import ContextLengthExceeded, ModelNotFound
from cluster.parsing import MiniMaxToolParser


@dataclass(frozen=True)
class ContractContext:
    """What the suite needs to know about the engine under test."""

    engine: Engine
    model: str
    context_window: int
    prefix_caching: bool
    lora: bool = False
    # Each content chunk carries exactly one generated token (the simulator does).
    one_chunk_per_token: bool = True
    # Words in the shared prefix of the prefix-cache test (must exceed one KV block).
    prefix_words: int = 400
    # Time for a kv_events() subscription to become live before a request is sent.
    subscribe_delay_s: float = 0.0
    # abort(), aclose() and cancelling a consumer free the request before they return
    # (stats() no longer counts it); when False the suite polls until `timeout_s`.
    release_is_immediate: bool = True
    timeout_s: float = 30.0
    # The model writes tool calls in its text (catalog tool_parser: minimax_m1); the core,
    # not the engine, turns them into tool calls.
    tool_calls_in_text: bool = False

    @classmethod
    def for_model(cls, engine: Engine, model: ServedModel, **overrides: Any) -> ContractContext:
        return cls(
            engine=engine,
            model=model.spec.id,
            context_window=model.spec.context_window,
            prefix_caching=model.spec.prefix_caching,
            lora=model.spec.lora is not None,
            tool_calls_in_text=model.spec.core_tool_parser is not None,
            **overrides,
        )


WEATHER_TOOL = Tool(
    type="function",
    function=FunctionDefinition(
        name="get_weather",
        description="Current weather for a city.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1},
            },
            "required": ["city", "unit"],
        },
    ),
)


def make_request(
    ctx: ContractContext, text: str, *, system: str | None = None, **fields: Any
) -> EngineRequest:
    messages: list[Message] = []
    if system is not None:
        messages.append(SystemMessage(role="system", content=system))
    messages.append(UserMessage(role="user", content=text))
    return EngineRequest(
        request_id="contract-" + uuid.uuid4().hex, model=ctx.model, messages=messages, **fields
    )


def shared_prefix(words: int) -> str:
    """A fresh long text: a random nonce, then numbered words (never seen by the cache)."""
    nonce = uuid.uuid4().hex
    return f"Reference {nonce}. " + " ".join(f"item{i % 97} value" for i in range(words // 2))


async def close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


async def collect(ctx: ContractContext, request: EngineRequest) -> list[EngineChunk]:
    stream = ctx.engine.generate(request)
    try:
        async with asyncio.timeout(ctx.timeout_s):
            return [chunk async for chunk in stream]
    finally:
        await close(stream)


async def raises_before_any_chunk(ctx: ContractContext, request: EngineRequest) -> None:
    """Call generate and take one chunk: the caller wraps this in pytest.raises."""
    stream = ctx.engine.generate(request)
    try:
        async with asyncio.timeout(ctx.timeout_s):
            chunk = await anext(stream)
        pytest.fail(f"expected an error before any chunk, got {chunk!r}")
    finally:
        await close(stream)


async def released(ctx: ContractContext, what: str) -> None:
    """The engine holds no request: at once if `release_is_immediate`, else within timeout."""
    if ctx.release_is_immediate:
        stats = ctx.engine.stats()
        assert stats.running == 0 and stats.waiting == 0, f"{what}: {stats}"
    else:
        await wait_until(ctx, what, lambda: idle(ctx))


async def wait_until(ctx: ContractContext, what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + ctx.timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {ctx.timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


def idle(ctx: ContractContext) -> bool:
    stats = ctx.engine.stats()
    return stats.running == 0 and stats.waiting == 0


def final_usage(chunks: list[EngineChunk]) -> Usage:
    assert chunks, "the stream yielded nothing"
    usage = chunks[-1].usage
    assert usage is not None, "the last chunk must carry usage"
    return usage


def content_chunks(chunks: list[EngineChunk]) -> list[EngineChunk]:
    return [c for c in chunks if c.text or c.reasoning or c.tool_calls]


class EngineContract:
    """Tests every Engine must pass; subclasses provide the `contract` fixture."""

    async def test_health_check_passes_when_started(self, contract: ContractContext) -> None:
        await contract.engine.check_health()
        assert isinstance(contract.engine.name, str) and contract.engine.name
        assert isinstance(contract.engine.simulated, bool)

    async def test_stream_ends_with_exactly_one_final_chunk(
        self, contract: ContractContext
    ) -> None:
        chunks = await collect(contract, make_request(contract, "Say something.", max_tokens=32))
        assert chunks[-1].finish_reason in ("stop", "length", "tool_calls")
        usage = final_usage(chunks)
        assert usage.prompt_tokens > 0
        for chunk in chunks[:-1]:
            assert chunk.finish_reason is None and chunk.usage is None
        assert all(c.error is None for c in chunks)
        assert chunks[0].replica_id, "the first chunk names the replica that served it"

    async def test_completion_tokens_count_the_streamed_tokens(
        self, contract: ContractContext
    ) -> None:
        chunks = await collect(contract, make_request(contract, "Tell a story.", max_tokens=48))
        usage = final_usage(chunks)
        streamed = len(content_chunks(chunks))
        assert 1 <= usage.completion_tokens <= 48
        if contract.one_chunk_per_token:
            assert usage.completion_tokens == streamed
        else:
            assert streamed <= usage.completion_tokens

    async def test_max_tokens_ends_with_length(self, contract: ContractContext) -> None:
        request = make_request(contract, "Count from one to one hundred.", max_tokens=5)
        chunks = await collect(contract, request)
        assert chunks[-1].finish_reason == "length"
        assert final_usage(chunks).completion_tokens == 5

    async def test_repeated_prefix_is_served_from_the_cache(
        self, contract: ContractContext
    ) -> None:
        prefix = shared_prefix(contract.prefix_words)
        first = await collect(contract, make_request(contract, "First?", system=prefix))
        second = await collect(contract, make_request(contract, "Second?", system=prefix))
        u1, u2 = final_usage(first), final_usage(second)
        if not contract.prefix_caching:
            assert u1.cached_tokens == 0 and u2.cached_tokens == 0
            pytest.skip("prefix caching is off for this model (asserted cached_tokens == 0)")
        assert u1.cached_tokens == 0, "a fresh prefix cannot be cached"
        assert 0 < u2.cached_tokens < u2.prompt_tokens
        assert u2.cached_tokens % contract.engine.stats().block_size == 0, "whole blocks only"

    @pytest.mark.parametrize("overflow", ["max_tokens", "prompt"])
    async def test_context_overflow_raises_before_any_chunk(
        self, contract: ContractContext, overflow: str
    ) -> None:
        window = contract.context_window
        if overflow == "max_tokens":
            request = make_request(contract, "Hello.", max_tokens=window)
        else:
            if window > 200_000:
                pytest.skip(f"a {window}-token prompt is too costly to build in a unit test")
            request = make_request(contract, " ".join(["a"] * (window + 16)))
        with pytest.raises(ContextLengthExceeded) as caught:
            await raises_before_any_chunk(contract, request)
        assert caught.value.param in ("messages", "prompt")
        assert str(window) in caught.value.message
        await wait_until(contract, "no request left behind", lambda: idle(contract))

    async def test_unknown_adapter_raises_model_not_found(self, contract: ContractContext) -> None:
        if contract.lora:
            pytest.skip("the model serves LoRA adapters")
        request = make_request(contract, "Hello.", adapter="no-such-adapter")
        with pytest.raises(ModelNotFound, match="no-such-adapter"):
            await raises_before_any_chunk(contract, request)

    async def test_abort_frees_the_request(self, contract: ContractContext) -> None:
        request = make_request(contract, "Write at length.", max_tokens=512)
        stream = contract.engine.generate(request)
        try:
            async with asyncio.timeout(contract.timeout_s):
                await anext(stream)
                await contract.engine.abort(request.request_id)
                await released(contract, "running == 0 after abort")
                rest = [chunk async for chunk in stream]  # the stream must end
        finally:
            await close(stream)
        assert len(rest) < 512

    @pytest.mark.parametrize("how", ["aclose", "cancel_consumer"])
    async def test_closing_the_stream_frees_the_request(
        self, contract: ContractContext, how: str
    ) -> None:
        request = make_request(contract, "Write at length.", max_tokens=512)
        stream = contract.engine.generate(request)
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _ in stream:
                got_one.set()

        if how == "aclose":
            async with asyncio.timeout(contract.timeout_s):
                await anext(stream)
            await close(stream)
        else:
            task = asyncio.create_task(consume())
            async with asyncio.timeout(contract.timeout_s):
                await got_one.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await released(contract, f"running == 0 after {how}")

    async def test_stats_are_sane(self, contract: ContractContext) -> None:
        before = contract.engine.stats()
        assert before.running == 0 and before.waiting == 0
        assert before.kv_blocks_total >= 1 and before.block_size >= 1
        assert 0.0 <= before.kv_usage <= 0.05, "an idle engine holds (almost) no blocks"
        assert before.prefix_cache_hits <= before.prefix_cache_queries
        request = make_request(contract, "Go on.", system=shared_prefix(64), max_tokens=64)
        stream = contract.engine.generate(request)
        try:
            async with asyncio.timeout(contract.timeout_s):
                await anext(stream)
                during = contract.engine.stats()
                _ = [chunk async for chunk in stream]
        finally:
            await close(stream)
        assert during.running + during.waiting >= 1
        assert during.kv_usage > 0.0
        await wait_until(contract, "idle after the request", lambda: idle(contract))
        after = contract.engine.stats()
        assert after.prefix_cache_hits <= after.prefix_cache_queries
        if contract.prefix_caching:
            assert after.prefix_cache_queries > before.prefix_cache_queries

    async def test_kv_events_report_stored_blocks(self, contract: ContractContext) -> None:
        events = contract.engine.kv_events()
        batches: list[KVEventBatch] = []

        async def consume() -> None:
            async for batch in events:
                batches.append(batch)
                if any(e.type == "stored" and e.block_hashes for e in batch.events):
                    return

        task = asyncio.create_task(consume())
        try:
            await asyncio.sleep(contract.subscribe_delay_s)
            request = make_request(contract, "Hi.", system=shared_prefix(contract.prefix_words))
            await collect(contract, request)
            if not contract.prefix_caching:
                await asyncio.sleep(0.2)
                assert batches == [], "no KV events without prefix caching"
                pytest.skip("prefix caching is off for this model (asserted no events)")
            async with asyncio.timeout(contract.timeout_s):
                await task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await close(events)
        seqs = [b.seq for b in batches]
        assert seqs == sorted(set(seqs)), "batch sequence numbers increase"
        stored = [e for b in batches for e in b.events if e.type == "stored" and e.block_hashes]
        assert stored and all(b.replica_id for b in batches)
        for event in stored:
            if event.token_ids:
                assert len(event.token_ids) == len(event.block_hashes) * event.block_size

    async def test_named_tool_choice_returns_json_arguments(
        self, contract: ContractContext
    ) -> None:
        choice = NamedToolChoice(type="function", function=NamedFunction(name="get_weather"))
        request = make_request(
            contract,
            "What is the weather in Paris?",
            tools=[WEATHER_TOOL],
            tool_choice=choice,
            max_tokens=256,
        )
        chunks = await collect(contract, request)
        assert chunks[-1].finish_reason in ("tool_calls", "stop")
        deltas = [delta for chunk in chunks for delta in chunk.tool_calls]
        if contract.tool_calls_in_text:  # parsed as the core parses it
            assert not deltas
            parser = MiniMaxToolParser()
            text = "".join(chunk.text for chunk in chunks)
            deltas = [*parser.feed(text).calls, *parser.finish().calls]
        calls: dict[int, dict[str, str]] = {}
        for delta in deltas:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or (delta.id or "")
            call["name"] = call["name"] or (delta.name or "")
            call["arguments"] += delta.arguments
        assert len(calls) == 1, f"expected one tool call, got {calls}"
        call = calls[0]
        assert call["id"] and call["name"] == "get_weather"
        arguments = json.loads(call["arguments"])
        assert isinstance(arguments, dict)
        assert {"city", "unit"} <= arguments.keys()
        assert arguments["unit"] in ("celsius", "fahrenheit")

    async def test_concurrent_requests_all_complete(self, contract: ContractContext) -> None:
        requests = [
            make_request(contract, f"Request number {i}.", max_tokens=16 + i) for i in range(8)
        ]
        results = await asyncio.gather(*(collect(contract, r) for r in requests))
        for i, chunks in enumerate(results):
            assert chunks[-1].finish_reason is not None
            assert 1 <= final_usage(chunks).completion_tokens <= 16 + i
        await wait_until(contract, "idle after concurrent requests", lambda: idle(contract))
