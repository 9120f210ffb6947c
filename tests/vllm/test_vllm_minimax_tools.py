"""A model whose tool calls the core parses (`tool_parser: minimax_m1`) on real vLLM.

vLLM gets no tool parser for it (vLLM 0.32 has none for MiniMax-M1's `<tool_calls>`), so:
the replica starts; "auto" reaches vLLM and the text comes back raw; a named or "required"
`tool_choice` is turned into a structural tag that makes the model write one call in that
format, which the gateway's parser turns into OpenAI tool calls. The tiny random model of
this folder stands in for MiniMax-M1: structured output decides the format, not the model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
import pytest_asyncio

from cluster.api.messages import (
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    Tool,
    ToolChoice,
    UserMessage,
)
from cluster.config import ClusterConfig
from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import ServedModel
from cluster.engine import EngineRequest
from cluster.errors import InvalidRequest
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from cluster.parsing.minimax_tools import CLOSE_TAG, OPEN_TAG
from deployments.engines.vllm import VLLMEngine
from deployments.engines.vllm.requests import chat_request
from tests.contract.engine_contract import WEATHER_TOOL
from tests.vllm.conftest import MODEL_ID, TinyArtifacts, tiny_served

pytestmark = pytest.mark.vllm

PARSER = "minimax_m1"
CLOCK_TOOL = Tool(
    type="function",
    function={"name": "get_time", "parameters": {"type": "object", "properties": {}}},  # type: ignore[arg-type]
)
NAMED = NamedToolChoice(type="function", function=NamedFunction(name="get_weather"))


def request_with(choice: ToolChoice | None, **extra: object) -> EngineRequest:
    return EngineRequest(
        request_id="r1",
        model=MODEL_ID,
        messages=[UserMessage(role="user", content="Weather in Paris?")],
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice=choice,
        **extra,  # type: ignore[arg-type]
    )


# --- pure mapping: what vLLM is asked (its own validators compile the structural tag) -------


@pytest.mark.parametrize(
    ("choice", "names"),
    [(NAMED, ["get_weather"]), ("required", ["get_weather", "get_time"])],
    ids=["named", "required"],
)
def test_named_and_required_choices_become_a_structural_tag(
    choice: ToolChoice, names: list[str]
) -> None:
    vllm_request = chat_request(request_with(choice), model_name=MODEL_ID, core_tool_parser=PARSER)
    assert vllm_request.tool_choice == "auto"  # vLLM passes the text through
    assert vllm_request.structured_outputs is not None
    tag = json.loads(vllm_request.structured_outputs.structural_tag or "null")
    assert tag["format"]["begin"] == OPEN_TAG + "\n" and tag["format"]["end"] == "\n" + CLOSE_TAG
    schema = tag["format"]["content"]["json_schema"]
    options = schema.get("anyOf", [schema])
    assert [o["properties"]["name"]["const"] for o in options] == names


@pytest.mark.parametrize("choice", ["auto", "none", None])
def test_other_choices_are_passed_as_they_are(choice: ToolChoice | None) -> None:
    vllm_request = chat_request(request_with(choice), model_name=MODEL_ID, core_tool_parser=PARSER)
    assert vllm_request.structured_outputs is None
    assert vllm_request.tool_choice == (choice or "auto")


def test_models_with_a_vllm_tool_parser_keep_vllms_named_choice() -> None:
    vllm_request = chat_request(request_with(NAMED), model_name=MODEL_ID)
    assert vllm_request.structured_outputs is None
    assert vllm_request.tool_choice is not None and not isinstance(vllm_request.tool_choice, str)


def test_a_json_response_format_cannot_ride_with_a_constrained_call() -> None:
    request = request_with(NAMED, response_format=ResponseFormat(type="json_object"))
    with pytest.raises(InvalidRequest) as err:
        chat_request(request, model_name=MODEL_ID, core_tool_parser=PARSER)
    assert err.value.param == "response_format"


# --- the same model end to end: engine -> gateway core -> OpenAI SDK ------------------------


@pytest.fixture(scope="module")
def minimax_style_model(tiny_artifacts: TinyArtifacts) -> ServedModel:
    model = tiny_served(tiny_artifacts)
    spec = model.spec.model_copy(update={"tool_parser": PARSER})
    return model.model_copy(update={"spec": spec})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sdk(minimax_style_model: ServedModel) -> AsyncIterator[openai.AsyncOpenAI]:
    engine = VLLMEngine(minimax_style_model, replica_id="vllm-minimax-0")
    await engine.start()  # no vLLM tool parser needed: it starts
    try:
        assert engine.config is not None
        assert engine.config.serving.tool_call_parser is None
        assert engine.config.serving.core_tool_parser == PARSER
        config = ClusterConfig(
            catalog=[minimax_style_model.spec], models=[minimax_style_model.deployment]
        )
        served = config.served_models(load_builtin_catalog())
        app = build_gateway_app(config, served, EngineBackend({MODEL_ID: engine}))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield openai.AsyncOpenAI(
                api_key="unused", base_url="http://gateway/v1", http_client=http, max_retries=0
            )
    finally:
        await engine.shutdown()


MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS = [WEATHER_TOOL.model_dump(exclude_none=True)]
NAMED_CHOICE = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.asyncio(loop_scope="session")
async def test_named_tool_choice_comes_back_as_a_parsed_tool_call(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model=MODEL_ID,
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice=NAMED_CHOICE,  # type: ignore[arg-type]
        max_tokens=128,
    )
    [choice] = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert not choice.message.content  # the <tool_calls> block is not content
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    function = calls[0].function  # type: ignore[union-attr]
    assert function.name == "get_weather" and calls[0].id.startswith("call_")
    arguments = json.loads(function.arguments)
    assert {"city", "unit"} <= arguments.keys()
    assert arguments["unit"] in ("celsius", "fahrenheit")


@pytest.mark.asyncio(loop_scope="session")
async def test_streamed_named_call_arrives_as_a_tool_call_delta(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL_ID,
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice=NAMED_CHOICE,  # type: ignore[arg-type]
        max_tokens=128,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert [call.function.name for call in calls if call.function and call.function.name] == [
        "get_weather"
    ]
    arguments = "".join(call.function.arguments or "" for call in calls if call.function)
    assert {"city", "unit"} <= json.loads(arguments).keys()
    assert not "".join(d.content or "" for d in deltas)  # no raw tag leaked into content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.asyncio(loop_scope="session")
async def test_auto_tool_choice_is_accepted_without_a_vllm_parser(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model=MODEL_ID,
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice="auto",
        max_tokens=8,
    )
    [choice] = completion.choices
    # The tiny model writes no <tool_calls> block: plain text, cut at max_tokens.
    assert choice.finish_reason == "length"
    assert choice.message.tool_calls is None
    assert completion.usage is not None and completion.usage.completion_tokens == 8
