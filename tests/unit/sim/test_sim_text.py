"""Simulated output: tool-call rules, schema-valid arguments, limits, stops, honest counts."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest

from cluster.api.messages import (
    AssistantMessage,
    FunctionDefinition,
    Message,
    NamedFunction,
    NamedToolChoice,
    Tool,
    ToolChoice,
    ToolMessage,
    UserMessage,
)
from cluster.engine import EngineRequest, SamplingParams
from cluster.errors import InvalidRequest
from deployments.engines.sim.text import OutputPlan, plan_output, select_tool
from deployments.engines.sim.tokenizer import pieces
from deployments.engines.sim.tool_args import example_value

PROMPT_IDS = [1, 2, 3]


def tool(name: str, parameters: dict[str, Any] | None = None) -> Tool:
    return Tool(type="function", function=FunctionDefinition(name=name, parameters=parameters))


def request(
    *,
    tools: list[Tool] | None = None,
    tool_choice: ToolChoice | None = None,
    last: str = "user",
    stop: list[str] | None = None,
    seed: int | None = None,
) -> EngineRequest:
    messages: list[Message] = [UserMessage(role="user", content="hi")]
    if last == "tool":
        messages += [
            AssistantMessage(role="assistant", content="calling"),
            ToolMessage(role="tool", content="42", tool_call_id="call_1"),
        ]
    return EngineRequest(
        request_id="r1",
        model="m",
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        sampling=SamplingParams(stop=stop or [], seed=seed),
    )


def plan(
    req: EngineRequest, *, limit: int = 10_000, think: bool = False, seed: int = 0
) -> OutputPlan:
    return plan_output(req, prompt_ids=PROMPT_IDS, limit=limit, seed=seed, think_tags=think)


def text_of(p: OutputPlan) -> str:
    return "".join(t.text for t in p.tokens)


def arguments_of(p: OutputPlan) -> tuple[str | None, str | None, str]:
    deltas = [t.tool_call for t in p.tokens if t.tool_call is not None]
    return deltas[0].id, deltas[0].name, "".join(d.arguments for d in deltas)


A, B = tool("first"), tool("second")
NAMED_B = NamedToolChoice(type="function", function=NamedFunction(name="second"))


@pytest.mark.parametrize(
    ("tools", "choice", "last", "called"),
    [
        ([A, B], NAMED_B, "user", "second"),
        ([A, B], NAMED_B, "tool", "second"),
        ([A, B], "required", "tool", "first"),
        ([A, B], "auto", "user", "first"),
        ([A, B], None, "user", "first"),  # unset with tools means auto
        ([A, B], "auto", "tool", None),  # after a tool result the model answers in text
        ([A, B], "none", "user", None),
        (None, None, "user", None),
        (None, "auto", "user", None),
    ],
)
def test_tool_choice_rules(
    tools: list[Tool] | None, choice: ToolChoice | None, last: str, called: str | None
) -> None:
    selected = select_tool(request(tools=tools, tool_choice=choice, last=last))
    assert (selected.name if selected else None) == called


@pytest.mark.parametrize(
    ("tools", "choice"),
    [
        ([A], NamedToolChoice(type="function", function=NamedFunction(name="missing"))),
        (None, "required"),
    ],
)
def test_impossible_tool_choice_is_invalid(tools: list[Tool] | None, choice: ToolChoice) -> None:
    with pytest.raises(InvalidRequest) as caught:
        select_tool(request(tools=tools, tool_choice=choice))
    assert caught.value.param == "tool_choice"


SCHEMAS: list[dict[str, Any]] = [
    {},
    {"type": "object", "properties": {}},
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 3, "maximum": 7},
            "optional": {"type": "boolean"},
        },
        "required": ["city", "unit", "days"],
    },
    {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "ratio": {"type": "number", "exclusiveMinimum": 5},
            "flag": {"type": "boolean"},
            "nothing": {"type": "null"},
            "nullable": {"type": ["null", "string"]},
            "choice": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "const": {"const": "fixed"},
            "date": {"type": "string", "format": "date"},
            "short": {"type": "string", "maxLength": 3},
            "long": {"type": "string", "minLength": 40},
        },
        "required": [
            "tags",
            "ratio",
            "flag",
            "nothing",
            "nullable",
            "choice",
            "const",
            "date",
            "short",
            "long",
        ],
    },
    {
        "type": "object",
        "properties": {
            "filter": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["field", "limit"],
            },
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer", "maximum": -5}},
                    "required": ["id"],
                },
            },
        },
        "required": ["filter", "items"],
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_example_values_satisfy_their_schema(schema: dict[str, Any]) -> None:
    value = example_value(schema, random.Random(0), words=["alpha", "beta"])
    jsonschema.validate(value, schema)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_named_call_streams_json_arguments_valid_for_the_schema(schema: dict[str, Any]) -> None:
    req = request(tools=[tool("fn", schema)], tool_choice="required")
    p = plan(req)
    call_id, name, arguments = arguments_of(p)
    assert p.finish_reason == "tool_calls"
    assert name == "fn" and call_id is not None and call_id.startswith("call_")
    assert len(call_id) == len("call_") + 24 and int(call_id[5:], 16) >= 0
    jsonschema.validate(json.loads(arguments), schema)
    # Honest counts: one header token, then one token per argument piece.
    assert len(p.tokens) == 1 + len(pieces(arguments))


def test_think_tags_open_the_text_of_reasoning_models() -> None:
    p = plan(request(), think=True)
    text = text_of(p)
    assert text.startswith("<think>\n") and "\n</think>\n\n" in text
    assert not text_of(plan(request())).startswith("<think>")


@pytest.mark.parametrize("limit", [1, 2, 7, 20])
def test_the_limit_cuts_with_length(limit: int) -> None:
    p = plan(request(), limit=limit)
    assert len(p.tokens) == limit and p.finish_reason == "length"


def test_a_call_cut_by_the_limit_ends_with_length() -> None:
    req = request(tools=[tool("fn", SCHEMAS[2])], tool_choice="required")
    assert plan(req, limit=3).finish_reason == "length"


def test_without_a_limit_text_ends_with_stop_and_a_natural_length() -> None:
    p = plan(request())
    assert p.finish_reason == "stop" and 24 <= len(p.tokens) <= 200


def test_stop_strings_cut_before_the_earliest_match() -> None:
    full = text_of(plan(request()))
    words = full.split()
    stop_a, stop_b = words[5], words[2]
    p = plan(request(stop=[stop_a, stop_b]))
    cut = full[: min(full.find(stop_a), full.find(stop_b))]
    assert text_of(p) == cut and p.finish_reason == "stop"
    assert stop_a not in text_of(p) and stop_b not in text_of(p)


def test_a_stop_string_suppresses_the_tool_call() -> None:
    req = request(tools=[A], tool_choice="required", stop=["<"])
    p = plan(req, think=True)
    assert p.finish_reason == "stop"
    assert all(t.tool_call is None for t in p.tokens)


@pytest.mark.parametrize("think", [False, True])
def test_streamed_text_retokenizes_to_the_token_count(think: bool) -> None:
    for seed in range(20):
        p = plan(request(seed=seed), think=think, limit=10 + seed * 7)
        assert pieces(text_of(p)) == [t.text for t in p.tokens]


def test_output_is_a_function_of_seed_and_prompt() -> None:
    assert plan(request()) == plan(request())
    texts = {text_of(plan(request(), seed=s)) for s in range(5)}
    texts |= {text_of(plan(request(seed=s))) for s in range(5)}
    assert len(texts) == 10
