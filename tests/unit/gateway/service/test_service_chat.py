"""GatewayService chat/completions against scripted engines: shapes, fan-out, usage, parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster.api.messages import SystemMessage, UserMessage
from cluster.api.responses import ChatCompletionChunk
from cluster.api.validation import validate_chat, validate_completion
from cluster.engine import EngineChunk, EngineRequest, ToolCallDelta, Usage
from cluster.errors import ContextLengthExceeded, ModelNotFound
from cluster.gateway.service.requests import SAFE_PROMPT
from tests.unit.gateway.service.scripted import (
    DEVSTRAL,
    MINIMAX,
    MISTRAL,
    MISTRAL_ALIAS,
    QWEN,
    Rig,
    build_rig,
    text_chunks,
)


def chat(model: str = QWEN, **fields: Any):  # type: ignore[no-untyped-def]
    return validate_chat(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    )


async def collect(rig: Rig, request: Any) -> list[ChatCompletionChunk]:
    return [chunk async for chunk in rig.service.stream_chat(request)]


async def test_chat_response_shape(hello_rig: Rig) -> None:
    response = await hello_rig.service.chat(chat())
    body = response.model_dump(mode="json")
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert body["model"] == QWEN
    assert body["system_fingerprint"] == "modelyard-sim-SIMULATED"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello world"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 3,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 0},
        # 10 x 30 / 1e6 + 3 x 151 / 1e6 RUB (seed prices, short tier)
        "cost": 0.000753,
        "cost_details": {
            "currency": "RUB",
            "tier": "prompt_tokens<=32000",
            "tier_max_prompt_tokens": 32000,
            "items": [
                {"kind": "input", "tokens": 10, "unit_price": 30.0, "amount": 0.0003},
                {"kind": "cache_read", "tokens": 0, "unit_price": 8.0, "amount": 0.0},
                {"kind": "output", "tokens": 3, "unit_price": 151.0, "amount": 0.000453},
            ],
        },
    }


async def test_vllm_fingerprint_is_not_simulated() -> None:
    rig = build_rig(lambda _r: text_chunks("x"), engine_kind="vllm")
    response = await rig.service.chat(chat())
    assert response.system_fingerprint == "modelyard-vllm"
    assert rig.service.engine_label(QWEN) == "vllm"


async def test_n_fans_out_with_unique_ids_and_counts_prompt_once() -> None:
    cached = iter([64, 32, 48])
    rig = build_rig(lambda r: text_chunks("a", "b", prompt=100, cached=next(cached)))
    response = await rig.service.chat(chat(n=3))
    sent = rig.engine(QWEN).requests
    assert len(sent) == 3
    assert len({r.request_id for r in sent}) == 3
    assert all(r.request_id.startswith(response.id) for r in sent)
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert response.usage.prompt_tokens == 100
    assert response.usage.completion_tokens == 6
    assert response.usage.total_tokens == 106
    assert response.usage.prompt_tokens_details.cached_tokens == 32


async def test_streaming_chunks_follow_openai(hello_rig: Rig) -> None:
    chunks = await collect(hello_rig, chat(stream=True, stream_options={"include_usage": True}))
    bodies = [c.model_dump(mode="json") for c in chunks]
    assert len({b["id"] for b in bodies}) == 1
    assert all(b["object"] == "chat.completion.chunk" for b in bodies)
    assert bodies[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert [b["choices"][0]["delta"].get("content") for b in bodies[1:3]] == ["lo", " world"]
    assert all("role" not in b["choices"][0]["delta"] for b in bodies[1:4])
    final = bodies[3]["choices"][0]
    assert final["finish_reason"] == "stop" and final["delta"] == {}
    assert all("usage" not in b for b in bodies[:4])
    assert bodies[4]["choices"] == []
    assert bodies[4]["usage"]["total_tokens"] == 13
    assert len(bodies) == 5


async def test_no_usage_chunk_unless_asked(hello_rig: Rig) -> None:
    chunks = await collect(hello_rig, chat(stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


async def test_streamed_n_choices_each_start_with_role_and_finish_once() -> None:
    rig = build_rig(lambda _r: text_chunks("a", "b"))
    chunks = await collect(rig, chat(n=2, stream=True))
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices[0].index == index]
        assert mine[0].delta.role == "assistant"
        assert all(c.delta.role is None for c in mine[1:])
        assert [c.finish_reason for c in mine].count("stop") == 1
        assert "".join(c.delta.content or "" for c in mine) == "ab"


# MiniMax: raw <think> text split at awkward places, parsed into reasoning_content.
THINK_PIECES = ("<thi", "nk>\nfirst ", "thought</th", "ink>\n\nThe ", "answer")


async def test_reasoning_split_non_streaming() -> None:
    rig = build_rig(lambda _r: text_chunks(*THINK_PIECES))
    response = await rig.service.chat(chat(MINIMAX))
    message = response.choices[0].message
    assert message.reasoning_content == "first thought"
    assert message.content == "The answer"


async def test_reasoning_split_streaming_matches_non_streaming() -> None:
    rig = build_rig(lambda _r: text_chunks(*THINK_PIECES))
    chunks = await collect(rig, chat(MINIMAX, stream=True))
    deltas = [c.choices[0].delta for c in chunks]
    assert "".join(d.reasoning_content or "" for d in deltas) == "first thought"
    assert "".join(d.content or "" for d in deltas) == "The answer"
    assert all("<" not in (d.content or "") + (d.reasoning_content or "") for d in deltas)


async def test_think_tags_left_alone_for_models_without_reasoning_parser() -> None:
    rig = build_rig(lambda _r: text_chunks(*THINK_PIECES))
    response = await rig.service.chat(chat(QWEN))
    assert response.choices[0].message.content == "".join(THINK_PIECES)
    assert response.choices[0].message.reasoning_content is None


def tool_script(_request: EngineRequest) -> list[Any]:
    return [
        EngineChunk(tool_calls=[ToolCallDelta(index=0, id="call_a", name="get_weather")]),
        EngineChunk(tool_calls=[ToolCallDelta(index=0, arguments='{"city": ')]),
        EngineChunk(tool_calls=[ToolCallDelta(index=0, arguments='"Oslo"}')]),
        EngineChunk(
            tool_calls=[ToolCallDelta(index=1, id="call_b", name="get_time", arguments="{}")]
        ),
        EngineChunk(finish_reason="tool_calls", usage=Usage(prompt_tokens=20, completion_tokens=4)),
    ]


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "get_time"}},
]


async def test_tool_calls_assembled_and_passed_through() -> None:
    rig = build_rig(tool_script)
    choice = {"type": "function", "function": {"name": "get_weather"}}
    response = await rig.service.chat(chat(tools=TOOLS, tool_choice=choice))
    sent = rig.engine(QWEN).requests[0]
    assert [t.function.name for t in sent.tools or []] == ["get_weather", "get_time"]
    assert sent.tool_choice is not None and sent.tool_choice.model_dump() == choice
    out = response.choices[0]
    assert out.finish_reason == "tool_calls"
    assert out.message.content is None
    calls = [c.model_dump() for c in out.message.tool_calls or []]
    assert calls == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Oslo"}


async def test_tool_call_deltas_stream_in_openai_shape() -> None:
    rig = build_rig(tool_script)
    chunks = await collect(rig, chat(tools=TOOLS, stream=True))
    deltas = [c.model_dump(mode="json")["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant"
    assert deltas[0]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    assert deltas[1]["tool_calls"] == [{"index": 0, "function": {"arguments": '{"city": '}}]
    assert deltas[3]["tool_calls"][0]["id"] == "call_b"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_parallel_tool_calls_false_keeps_the_first_call() -> None:
    rig = build_rig(tool_script)
    response = await rig.service.chat(chat(tools=TOOLS, parallel_tool_calls=False))
    assert [c.id for c in response.choices[0].message.tool_calls or []] == ["call_a"]


async def test_sampling_and_safe_prompt_reach_the_engine(hello_rig: Rig) -> None:
    request = validate_chat(
        {
            "model": QWEN,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            "temperature": 0.2,
            "top_k": -1,
            "random_seed": 9,
            "stop": "END",
            "max_completion_tokens": 50,
            "safe_prompt": True,
            "response_format": {"type": "json_object"},
        }
    )
    await hello_rig.service.chat(request)
    sent = hello_rig.engine(QWEN).requests[0]
    assert sent.sampling.temperature == 0.2
    assert sent.sampling.top_k is None
    assert sent.sampling.seed == 9
    assert sent.sampling.stop == ["END"]
    assert sent.sampling.top_p == 1.0  # unset: the engine default
    assert sent.max_tokens == 50
    assert sent.response_format is not None and sent.response_format.type == "json_object"
    assert sent.messages is not None
    first = sent.messages[0]
    assert isinstance(first, SystemMessage)
    assert first.content == f"{SAFE_PROMPT}\n\nBe brief."
    assert isinstance(sent.messages[1], UserMessage)


async def test_safe_prompt_without_system_message_adds_one(hello_rig: Rig) -> None:
    await hello_rig.service.chat(chat(safe_prompt=True))
    sent = hello_rig.engine(QWEN).requests[0]
    assert sent.messages is not None and len(sent.messages) == 2
    assert sent.messages[0].content == SAFE_PROMPT


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
async def test_max_tokens_beyond_context_fails_before_the_engine(
    hello_rig: Rig, param: str
) -> None:
    with pytest.raises(ContextLengthExceeded) as caught:
        await hello_rig.service.chat(chat(MISTRAL, **{param: 32769}))
    assert caught.value.param == param
    assert "32768" in caught.value.message
    assert hello_rig.engine(MISTRAL).requests == []


async def test_unknown_model_names_only_itself(hello_rig: Rig) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await hello_rig.service.chat(chat("acme/secret-model"))
    assert "acme/secret-model" in caught.value.message
    assert QWEN not in caught.value.message and MINIMAX not in caught.value.message
    assert caught.value.http_status == 404 and caught.value.param == "model"
    assert (
        hello_rig.metrics.sample(
            "modelyard_errors_total", {"model": "unknown", "code": "model_not_found"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("name", "model", "adapter", "reported"),
    [
        (MISTRAL_ALIAS, MISTRAL, None, MISTRAL),
        (f"{MISTRAL}:sql-lora", MISTRAL, "sql-lora", f"{MISTRAL}:sql-lora"),
        (f"{MISTRAL_ALIAS}:sql-lora", MISTRAL, "sql-lora", f"{MISTRAL}:sql-lora"),
    ],
)
async def test_aliases_and_adapters_resolve(
    hello_rig: Rig, name: str, model: str, adapter: str | None, reported: str
) -> None:
    response = await hello_rig.service.chat(chat(name))
    sent = hello_rig.engine(model).requests[0]
    assert (sent.model, sent.adapter) == (model, adapter)
    assert response.model == reported


@pytest.mark.parametrize("name", [f"{QWEN}:my-lora", f"{MISTRAL}:", "nope:adapter"])
async def test_adapters_only_for_lora_models(hello_rig: Rig, name: str) -> None:
    with pytest.raises(ModelNotFound) as caught:
        await hello_rig.service.chat(chat(name))
    assert name in caught.value.message


async def test_completions_number_choices_per_prompt_and_sum_prompts() -> None:
    prompts = {"a": 10, "bb": 20}
    rig = build_rig(lambda r: text_chunks("x", "y", prompt=prompts[r.prompt or ""], cached=0))
    request = validate_completion({"model": DEVSTRAL, "prompt": ["a", "bb"], "n": 2})
    response = await rig.service.complete(request)
    body = response.model_dump(mode="json")
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert [c["text"] for c in body["choices"]] == ["xy"] * 4
    sent = rig.engine(DEVSTRAL).requests
    assert [r.prompt for r in sent] == ["a", "a", "bb", "bb"]
    assert body["usage"]["prompt_tokens"] == 30
    assert body["usage"]["completion_tokens"] == 8


async def test_stream_completions_with_usage() -> None:
    rig = build_rig(lambda _r: text_chunks("x", "y"))
    request = validate_completion(
        {
            "model": DEVSTRAL,
            "prompt": "p",
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    chunks = [c async for c in rig.service.stream_complete(request)]
    assert [c.choices[0].text for c in chunks[:2]] == ["x", "y"]
    assert chunks[2].choices[0].finish_reason == "stop"
    assert chunks[3].choices == [] and chunks[3].usage is not None
    assert all(c.object == "text_completion" for c in chunks)


async def test_models_list_and_get(hello_rig: Rig) -> None:
    listing = hello_rig.service.list_models().model_dump(mode="json")
    assert listing["object"] == "list"
    cards = {card["id"]: card for card in listing["data"]}
    assert set(cards) == {QWEN, MINIMAX, DEVSTRAL, MISTRAL}
    assert cards[QWEN]["owned_by"] == "qwen"
    assert cards[QWEN]["object"] == "model"
    assert cards[QWEN]["simulated"] is True and cards[QWEN]["engine"] == "sim"
    assert cards[MINIMAX]["context_window"] == 1_000_000
    assert hello_rig.service.get_model(MISTRAL_ALIAS).id == MISTRAL
    with pytest.raises(ModelNotFound):
        hello_rig.service.get_model("nope")
    with pytest.raises(ModelNotFound):
        hello_rig.service.get_model(f"{MISTRAL}:lora")
