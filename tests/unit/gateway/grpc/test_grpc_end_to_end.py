"""The gRPC API end to end: generated client → grpc.aio server → GatewayService → SimEngine."""

from __future__ import annotations

import asyncio
import json
import uuid

import grpc
import pytest

from cluster.errors import DeadlineExceeded, InvalidRequest
from cluster.gateway.grpc.client import (
    ChatChunk,
    ChatRequest,
    CompletionRequest,
    function_tool,
    grpc_code,
    named_tool_choice,
    token_prompt,
    user,
)
from cluster.gateway.grpc.gen.modelyard.v1 import common_pb2
from tests.unit.gateway.grpc.harness import DEVSTRAL, QWEN, Harness, wait_until

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1},
    },
    "required": ["city", "unit"],
}


def fresh_prompt(words: int = 300) -> str:
    """A prompt no earlier request shares a prefix with (several KV blocks long)."""
    return uuid.uuid4().hex + " " + " ".join(f"word{i}" for i in range(words))


async def collect(harness: Harness, request: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in harness.client.chat(request, deadline_s=10)]


async def test_streaming_chat_ends_with_usage_and_reports_cached_prefix(harness: Harness) -> None:
    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt())], max_tokens=6)
    first = await collect(harness, request)
    second = await collect(harness, request)
    for chunks in (first, second):
        assert len({chunk.id for chunk in chunks}) == 1
        assert chunks[0].choices[0].delta.role == "assistant"
        finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
        assert [c.choices[0].finish_reason for c in finals] == [common_pb2.FINISH_REASON_LENGTH]
        last = chunks[-1]
        assert not last.choices and last.HasField("usage")
        assert all(not chunk.HasField("usage") for chunk in chunks[:-1])
        streamed = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
        assert last.usage.completion_tokens == streamed == 6
        assert last.usage.total_tokens == last.usage.prompt_tokens + 6
    assert first[-1].usage.cached_tokens == 0
    cached = second[-1].usage.cached_tokens
    assert 0 < cached < second[-1].usage.prompt_tokens
    assert cached % 16 == 0  # whole KV blocks
    assert first[-1].usage.prompt_tokens == second[-1].usage.prompt_tokens


async def test_named_tool_choice_streams_one_call_of_that_function(harness: Harness) -> None:
    request = ChatRequest(
        model=QWEN,
        messages=[user("What is the weather in Paris?")],
        tools=[function_tool("get_weather", WEATHER, "Current weather for a city.")],
        tool_choice=named_tool_choice("get_weather"),
        max_tokens=200,
    )
    chunks = await collect(harness, request)
    pieces = [call for c in chunks for choice in c.choices for call in choice.delta.tool_calls]
    assert pieces, "no tool call streamed"
    assert pieces[0].HasField("id") and pieces[0].name == "get_weather"
    assert {piece.index for piece in pieces} == {0}
    assert all(not p.HasField("id") for p in pieces[1:])
    arguments = json.loads("".join(piece.arguments for piece in pieces))
    assert {"city", "unit"} <= set(arguments)
    assert arguments["unit"] in ("celsius", "fahrenheit")
    reasons = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert reasons == [common_pb2.FINISH_REASON_TOOL_CALLS]


async def test_unary_chat_assembles_the_tool_call(harness: Harness) -> None:
    request = ChatRequest(
        model=QWEN,
        messages=[user("Weather in Oslo?")],
        tools=[function_tool("get_weather", WEATHER)],
        tool_choice=named_tool_choice("get_weather"),
        max_tokens=200,
    )
    response = await harness.client.chat_unary(request, deadline_s=10)
    (choice,) = response.choices
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and call.id
    assert {"city", "unit"} <= set(json.loads(call.function.arguments))
    assert not choice.message.HasField("content")
    assert response.usage.completion_tokens > 0
    assert response.system_fingerprint == "modelyard-sim-SIMULATED"


async def test_n_choices_are_indexed_and_usage_counts_the_prompt_once(harness: Harness) -> None:
    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt(50))], max_tokens=3, n=3)
    response = await harness.client.chat_unary(request, deadline_s=10)
    assert [choice.index for choice in response.choices] == [0, 1, 2]
    assert response.usage.completion_tokens == 9
    single = await harness.client.chat_unary(
        ChatRequest(model=QWEN, messages=request.messages, max_tokens=3), deadline_s=10
    )
    assert single.usage.prompt_tokens == response.usage.prompt_tokens


async def test_completions_stream_and_unary(harness: Harness) -> None:
    request = CompletionRequest(model=QWEN, prompt=["one two three", "four five"], max_tokens=4)
    events = [e async for e in harness.client.complete(request, deadline_s=10)]
    assert events[-1].HasField("usage") and not events[-1].choices
    assert events[-1].usage.completion_tokens == 8
    assert {choice.index for e in events for choice in e.choices} == {0, 1}
    whole = await harness.client.complete_unary(request, deadline_s=10)
    assert [choice.index for choice in whole.choices] == [0, 1]
    assert all(c.finish_reason == common_pb2.FINISH_REASON_LENGTH for c in whole.choices)
    assert whole.usage.prompt_tokens == events[-1].usage.prompt_tokens


async def test_list_and_get_models(harness: Harness) -> None:
    models = await harness.client.list_models(deadline_s=5)
    assert [m.id for m in models] == [QWEN, DEVSTRAL]
    assert all(m.simulated and m.engine == "sim" for m in models)
    qwen = await harness.client.get_model(QWEN)
    assert qwen.context_window == models[0].context_window > 0
    assert qwen.owned_by == "qwen"
    alias = next(iter(harness.service.resolver.models[0].spec.aliases), None)
    if alias is not None:
        assert (await harness.client.get_model(alias)).id == QWEN


async def test_deadline_mid_stream_aborts_the_engine_request(slow_harness: Harness) -> None:
    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt(20))], max_tokens=4000)
    received = 0
    with pytest.raises(DeadlineExceeded) as info:
        async for chunk in slow_harness.client.chat(request, deadline_s=0.5):
            received += len(chunk.choices)
            assert slow_harness.engine.stats().running == 1
    assert grpc_code(info.value) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert received > 1, "the deadline should expire mid-stream, not before it starts"
    stats = slow_harness.engine.stats
    await wait_until(lambda: stats().running == stats().waiting == 0, "the engine is idle")


async def test_deadline_on_a_unary_call_aborts_the_engine_request(slow_harness: Harness) -> None:
    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt(20))], max_tokens=4000)
    task = asyncio.create_task(slow_harness.client.chat_unary(request, deadline_s=0.5))
    await wait_until(lambda: slow_harness.engine.stats().running == 1, "the request runs")
    with pytest.raises(DeadlineExceeded):
        await task
    await wait_until(lambda: slow_harness.engine.stats().running == 0, "the engine is idle")


async def test_client_leaving_a_stream_early_frees_the_engine(slow_harness: Harness) -> None:
    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt(20))], max_tokens=4000)
    stream = slow_harness.client.chat(request, deadline_s=30)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.aclose()
    await wait_until(lambda: slow_harness.engine.stats().running == 0, "the engine is idle")


async def test_cost_in_the_final_chunk_and_the_unary_reply(harness: Harness) -> None:
    from decimal import Decimal

    request = ChatRequest(model=QWEN, messages=[user(fresh_prompt())], max_tokens=5)
    chunks = await collect(harness, request)
    assert all(not chunk.HasField("cost") for chunk in chunks[:-1])
    last = chunks[-1]
    assert last.HasField("cost") and last.cost.priced and last.cost.currency == "RUB"
    usage = last.usage
    expected = (
        Decimal(usage.prompt_tokens - usage.cached_tokens) * 30
        + Decimal(usage.cached_tokens) * 8
        + usage.completion_tokens * 151
    ) / 10**6
    assert Decimal(last.cost.total) == expected
    assert [line.kind for line in last.cost.lines] == ["input", "cache_read", "output"]
    whole = await harness.client.chat_unary(request, deadline_s=10)
    assert whole.cost.priced and Decimal(whole.cost.total) > 0


async def test_prompt_batches_and_token_ids_with_n(harness: Harness) -> None:
    """Three text prompts x n=2, then two token-id prompts x n=2: prompt-major indices,
    every choice finished, the token-id prompts counted as given."""
    text = CompletionRequest(model=QWEN, prompt=["a b", "c d e", "f"], n=2, max_tokens=3)
    whole = await harness.client.complete_unary(text, deadline_s=10)
    assert [c.index for c in whole.choices] == list(range(6))
    assert whole.usage.completion_tokens == 18
    ids = CompletionRequest(
        model=QWEN,
        prompt_token_ids=[token_prompt([5, 6, 7]), token_prompt([8, 9])],
        n=2,
        max_tokens=3,
    )
    events = [e async for e in harness.client.complete(ids, deadline_s=10)]
    finished = sorted(c.index for e in events for c in e.choices if c.finish_reason)
    assert finished == [0, 1, 2, 3]
    assert events[-1].usage.prompt_tokens == 5
    mixed = CompletionRequest(model=QWEN, prompt=["a"], prompt_token_ids=[token_prompt([1])])
    with pytest.raises(InvalidRequest) as info:
        await harness.client.complete_unary(mixed, deadline_s=10)
    assert info.value.param == "prompt"
