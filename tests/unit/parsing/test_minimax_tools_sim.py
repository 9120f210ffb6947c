"""MiniMax-M1 on the simulator, end to end: the simulator writes its tool calls raw in the
text (`<tool_calls>` JSON lines, as the model does) and the gateway's parser turns them into
OpenAI tool calls, seen through the official SDK (in-process transport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from cluster.api.messages import FunctionDefinition, NamedFunction, NamedToolChoice, Tool
from cluster.api.messages import UserMessage as User
from cluster.config import ClusterConfig, ModelDeployment, load_builtin_catalog
from cluster.engine import EngineRequest
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from cluster.parsing.minimax_tools import CLOSE_TAG, OPEN_TAG, MiniMaxToolParser
from deployments.engines.sim import SimEngine, VirtualClock
from deployments.engines.sim.text import plan_output
from deployments.engines.sim.tokenizer import pieces

MINIMAX = "minimax/minimax-m1"
QWEN = "qwen/qwen3-coder-flash"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def weather_request(**extra: object) -> EngineRequest:
    return EngineRequest(
        request_id="r",
        model=MINIMAX,
        messages=[User(role="user", content="Weather?")],
        tools=[Tool.model_validate(WEATHER)],
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("think", [False, True])
def test_text_tool_calls_are_planned_as_raw_text_ending_in_stop(think: bool) -> None:
    plan = plan_output(
        weather_request(), prompt_ids=[1, 2, 3], limit=10_000, seed=0, think_tags=think,
        text_tool_calls=True,
    )  # fmt: skip
    assert all(token.tool_call is None for token in plan.tokens)
    assert plan.finish_reason == "stop"  # as vLLM without a tool parser; the gateway decides
    text = "".join(token.text for token in plan.tokens)
    assert len(plan.tokens) == len(pieces(text))  # one token piece per streamed token
    assert text.startswith("<think>") is think
    assert text.count(OPEN_TAG) == 1 and text.endswith(f"\n{CLOSE_TAG}")
    parser = MiniMaxToolParser()
    calls = [*parser.feed(text.split("</think>")[-1]).calls, *parser.finish().calls]
    assert [c.name for c in calls] == ["get_weather"]
    assert {"city", "unit"} <= json.loads(calls[0].arguments).keys()


def test_a_token_limit_cuts_the_raw_call_with_length() -> None:
    plan = plan_output(
        weather_request(), prompt_ids=[1, 2, 3], limit=5, seed=0, think_tags=False,
        text_tool_calls=True,
    )  # fmt: skip
    assert plan.finish_reason == "length" and len(plan.tokens) == 5


@pytest.fixture
async def sdk() -> AsyncIterator[openai.AsyncOpenAI]:
    config = ClusterConfig(models=[ModelDeployment(id=m) for m in (MINIMAX, QWEN)])
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend(
        {m.id: SimEngine(m, replica_id="r0", clock=VirtualClock()) for m in served}
    )
    await backend.start()
    transport = httpx.ASGITransport(app=build_gateway_app(config, served, backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway/v1") as http:
        yield openai.AsyncOpenAI(
            api_key="unused", base_url="http://gateway/v1", http_client=http, max_retries=0
        )
    await backend.shutdown()


@pytest.mark.parametrize(
    "choice",
    ["auto", "required", {"type": "function", "function": {"name": "get_weather"}}],
    ids=["auto", "required", "named"],
)
async def test_minimax_tool_call_reaches_the_sdk_parsed(
    sdk: openai.AsyncOpenAI, choice: object
) -> None:
    completion = await sdk.chat.completions.create(
        model=MINIMAX,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice=choice,  # type: ignore[arg-type]
        max_tokens=512,
    )
    [answer] = completion.choices
    assert answer.finish_reason == "tool_calls"
    assert answer.message.content is None  # the raw block is not content
    assert getattr(answer.message, "reasoning_content", None)  # <think> went to reasoning
    [call] = answer.message.tool_calls or []
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert {"city", "unit"} <= json.loads(call.function.arguments).keys()  # type: ignore[union-attr]
    assert completion.system_fingerprint is not None
    assert "SIMULATED" in completion.system_fingerprint


async def test_minimax_streamed_call_has_no_raw_tags_in_content(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MINIMAX,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        max_tokens=512,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert OPEN_TAG not in "".join(d.content or "" for d in deltas)
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert len(calls) == 1 and calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0


async def test_without_tools_minimax_text_is_left_alone(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model=MINIMAX,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=512,
    )
    [answer] = completion.choices
    assert answer.finish_reason == "stop" and answer.message.tool_calls is None
    assert answer.message.content


async def test_other_models_keep_structured_calls_from_the_engine(
    sdk: openai.AsyncOpenAI,
) -> None:
    completion = await sdk.chat.completions.create(
        model=QWEN,
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=512,
    )
    [answer] = completion.choices
    assert answer.finish_reason == "tool_calls"
    assert [c.function.name for c in answer.message.tool_calls or []] == ["get_weather"]  # type: ignore[union-attr]


def test_named_choice_object_is_what_the_sim_calls() -> None:
    choice = NamedToolChoice(type="function", function=NamedFunction(name="get_time"))
    tools = [
        Tool.model_validate(WEATHER),
        Tool(type="function", function=FunctionDefinition(name="get_time")),
    ]
    plan = plan_output(
        weather_request().model_copy(update={"tools": tools, "tool_choice": choice}),
        prompt_ids=[1], limit=10_000, seed=0, think_tags=False, text_tool_calls=True,
    )  # fmt: skip
    text = "".join(token.text for token in plan.tokens)
    assert json.loads(text.split("\n")[1]) == {"name": "get_time", "arguments": {}}
