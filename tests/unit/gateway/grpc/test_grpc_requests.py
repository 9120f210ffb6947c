"""Proto requests become exactly the JSON an HTTP client would send, so validation is shared."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2

from cluster.errors import InvalidRequest
from cluster.gateway.grpc.client import (
    assistant,
    function_tool,
    named_tool_choice,
    system,
    tool_result,
    user,
)
from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, completion_pb2
from cluster.gateway.grpc.requests import (
    chat_request,
    chat_to_json,
    completion_request,
    completion_to_json,
    struct_to_dict,
)

M = "qwen/qwen3-coder-flash"
HI = {"role": "user", "content": "hi"}


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


CHAT_CASES = [
    pytest.param(chat_pb2.ChatRequest(), {}, id="empty"),
    pytest.param(
        chat_pb2.ChatRequest(model=M, messages=[user("hi")]),
        {"model": M, "messages": [HI]},
        id="minimal",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            model=M,
            messages=[user("hi")],
            temperature=0.0,
            top_p=0.5,
            top_k=-1,
            n=2,
            max_tokens=7,
            presence_penalty=0.0,
            seed=0,
            user="u1",
            stop=["\n", "END"],
            safe_prompt=False,
            parallel_tool_calls=False,
            metadata={"team": "search"},
        ),
        {
            "model": M,
            "messages": [HI],
            "temperature": 0.0,
            "top_p": 0.5,
            "top_k": -1,
            "n": 2,
            "max_tokens": 7,
            "presence_penalty": 0.0,
            "seed": 0,
            "user": "u1",
            "stop": ["\n", "END"],
            "safe_prompt": False,
            "parallel_tool_calls": False,
            "metadata": {"team": "search"},
        },
        id="zero-values-that-were-set-are-sent",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            model=M,
            messages=[
                system("be brief"),
                user("weather?"),
                assistant(tool_calls=[("call_1", "get_weather", '{"city":"Oslo"}')]),
                tool_result("call_1", "cold"),
                assistant("It is cold."),
                chat_pb2.ChatMessage(
                    role=chat_pb2.ROLE_ASSISTANT, content="Also", prefix=True, reasoning_content="r"
                ),
            ],
        ),
        {
            "model": M,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                {"role": "tool", "content": "cold", "tool_call_id": "call_1"},
                {"role": "assistant", "content": "It is cold."},
                {"role": "assistant", "content": "Also", "reasoning_content": "r", "prefix": True},
            ],
        },
        id="conversation-with-tools",
    ),
    pytest.param(
        chat_pb2.ChatRequest(messages=[chat_pb2.ChatMessage(content="x", name="")]),
        {"messages": [{"content": "x", "name": ""}]},
        id="unspecified-role-is-left-out",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            model=M,
            messages=[user("hi")],
            tools=[function_tool("f", {"type": "object", "properties": {"n": {"minimum": 1}}})],
            tool_choice=named_tool_choice("f"),
        ),
        {
            "model": M,
            "messages": [HI],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "f",
                        "parameters": {"type": "object", "properties": {"n": {"minimum": 1}}},
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
        },
        id="named-tool-choice-and-integral-numbers",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_REQUIRED)
        ),
        {"tool_choice": "required"},
        id="tool-choice-mode",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_UNSPECIFIED)
        ),
        {},
        id="tool-choice-unspecified-is-unset",
    ),
    pytest.param(
        chat_pb2.ChatRequest(
            response_format=chat_pb2.ResponseFormat(
                type=chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
                json_schema=chat_pb2.JsonSchemaFormat(
                    name="answer", schema=struct({"type": "object"}), strict=True
                ),
            )
        ),
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
            }
        },
        id="json-schema-response-format",
    ),
    pytest.param(
        chat_pb2.ChatRequest(response_format=chat_pb2.ResponseFormat()),
        {"response_format": {"type": "text"}},
        id="response-format-unspecified-is-text",
    ),
]


@pytest.mark.parametrize(("proto", "body"), CHAT_CASES)
def test_chat_request_becomes_the_http_body(
    proto: chat_pb2.ChatRequest, body: dict[str, Any]
) -> None:
    assert chat_to_json(proto, stream=False) == body


def test_streaming_always_asks_for_usage() -> None:
    body = chat_to_json(chat_pb2.ChatRequest(model=M), stream=True)
    assert body == {"model": M, "stream": True, "stream_options": {"include_usage": True}}
    parsed = chat_request(chat_pb2.ChatRequest(model=M, messages=[user("hi")]), stream=True)
    assert parsed.stream and parsed.include_usage


def test_completion_request_becomes_the_http_body() -> None:
    proto = completion_pb2.CompletionRequest(
        model=M, prompt=["a", "b"], max_tokens=3, temperature=0.0, stop=["."], seed=5
    )
    assert completion_to_json(proto, stream=False) == {
        "model": M,
        "prompt": ["a", "b"],
        "max_tokens": 3,
        "temperature": 0.0,
        "stop": ["."],
        "seed": 5,
    }
    parsed = completion_request(proto, stream=False)
    assert parsed.prompt == ["a", "b"] and parsed.temperature == 0.0


def test_struct_numbers_keep_fractions_and_nesting() -> None:
    data = {"a": 1, "b": 1.5, "c": [2, {"d": 3.0}], "e": None, "f": True, "g": "x"}
    assert struct_to_dict(struct(data)) == {
        "a": 1,
        "b": 1.5,
        "c": [2, {"d": 3}],
        "e": None,
        "f": True,
        "g": "x",
    }
    assert isinstance(struct_to_dict(struct({"a": 1}))["a"], int)


@pytest.mark.parametrize(
    ("proto", "param"),
    [
        (chat_pb2.ChatRequest(messages=[user("hi")]), "model"),
        (chat_pb2.ChatRequest(model=M), "messages"),
        (chat_pb2.ChatRequest(model=M, messages=[user("hi")], top_k=-2), "top_k"),
        (
            chat_pb2.ChatRequest(
                model=M, messages=[user("hi")], max_tokens=5, max_completion_tokens=6
            ),
            "max_completion_tokens",
        ),
        (
            chat_pb2.ChatRequest(
                model=M, messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_TOOL, content="x")]
            ),
            "messages[0].tool_call_id",
        ),
        (
            chat_pb2.ChatRequest(
                model=M,
                messages=[user("hi")],
                response_format=chat_pb2.ResponseFormat(
                    type=chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
                ),
            ),
            "response_format",
        ),
        (
            chat_pb2.ChatRequest(
                model=M, messages=[user("hi"), chat_pb2.ChatMessage(role=chat_pb2.ROLE_ASSISTANT)]
            ),
            "messages[1]",
        ),
    ],
)
def test_refusals_name_the_field_as_http_does(proto: chat_pb2.ChatRequest, param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        chat_request(proto, stream=False)
    assert info.value.param == param
