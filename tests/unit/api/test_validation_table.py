"""Every request rule, valid and invalid: status 400, `param` and a message naming the field.

The invalid tables are also replayed through the HTTP app in tests/unit/api/test_http_app.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cluster.api.responses import ErrorResponse
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.api.validation import (
    parse_chat_request,
    parse_completion_request,
    parse_json_body,
)
from cluster.errors import InvalidRequest, MalformedJSON

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
ASSISTANT_CALLS = {"role": "assistant", "content": None, "tool_calls": [CALL]}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [USER], **fields}


def completion(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "prompt": "hi", **fields}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# (case id, body, expected param)
CHAT_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("model-missing", without(chat(), "model"), "model"),
    ("model-empty", chat(model=""), "model"),
    ("model-not-string", chat(model=5), "model"),
    ("messages-missing", without(chat(), "messages"), "messages"),
    ("messages-empty", chat(messages=[]), "messages"),
    ("messages-not-list", chat(messages="hi"), "messages"),
    ("role-unknown", chat(messages=[{"role": "bot", "content": "x"}]), "messages[0].role"),
    ("role-missing", chat(messages=[{"content": "x"}]), "messages[0].role"),
    ("content-not-text", chat(messages=[{"role": "user", "content": 3}]), "messages[0].content"),
    (
        "content-part-not-text",
        chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        "messages[0].content[0].type",
    ),
    ("message-extra-key", chat(messages=[{**USER, "foo": 1}]), "messages[0].foo"),
    (
        "tool-message-without-id",
        chat(messages=[USER, ASSISTANT_CALLS, {"role": "tool", "content": "r"}]),
        "messages[2].tool_call_id",
    ),
    (
        "tool-message-empty-id",
        chat(
            messages=[USER, ASSISTANT_CALLS, {"role": "tool", "content": "r", "tool_call_id": ""}]
        ),
        "messages[2].tool_call_id",
    ),
    (
        "tool-message-unknown-id",
        chat(
            messages=[USER, ASSISTANT_CALLS, {"role": "tool", "content": "r", "tool_call_id": "x"}]
        ),
        "messages[2].tool_call_id",
    ),
    (
        "tool-message-without-call",
        chat(messages=[USER, {"role": "tool", "content": "r", "tool_call_id": "call_1"}]),
        "messages[1].tool_call_id",
    ),
    ("assistant-empty", chat(messages=[USER, {"role": "assistant"}]), "messages[1]"),
    (
        "tool-call-unanswered",
        chat(messages=[USER, ASSISTANT_CALLS, USER]),
        "messages[1].tool_calls[0].id",
    ),
    (
        "tool-call-empty-name",
        chat(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "", "arguments": ""}}],
                },
            ]
        ),
        "messages[1].tool_calls[0].function.name",
    ),
    (
        "prefix-not-last",
        chat(messages=[USER, {"role": "assistant", "content": "a", "prefix": True}, USER]),
        "messages[1].prefix",
    ),
    ("temperature-below", chat(temperature=-0.1), "temperature"),
    ("temperature-above", chat(temperature=2.1), "temperature"),
    ("temperature-string", chat(temperature="0.5"), "temperature"),
    ("top-p-above", chat(top_p=1.5), "top_p"),
    ("top-p-below", chat(top_p=-0.1), "top_p"),
    ("top-k-below", chat(top_k=-2), "top_k"),
    ("n-zero", chat(n=0), "n"),
    ("n-above-cap", chat(n=17), "n"),
    ("n-float", chat(n=1.5), "n"),
    ("max-tokens-zero", chat(max_tokens=0), "max_tokens"),
    ("max-tokens-string", chat(max_tokens="10"), "max_tokens"),
    ("max-completion-tokens-zero", chat(max_completion_tokens=0), "max_completion_tokens"),
    (
        "max-tokens-disagree",
        chat(max_tokens=5, max_completion_tokens=6),
        "max_completion_tokens",
    ),
    ("presence-penalty-below", chat(presence_penalty=-2.5), "presence_penalty"),
    ("presence-penalty-above", chat(presence_penalty=2.5), "presence_penalty"),
    ("frequency-penalty-below", chat(frequency_penalty=-2.5), "frequency_penalty"),
    ("frequency-penalty-above", chat(frequency_penalty=2.5), "frequency_penalty"),
    ("stop-too-many", chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stop-not-string", chat(stop=5), "stop"),
    ("stop-item-not-string", chat(stop=["a", 1]), "stop[1]"),
    ("stop-item-empty", chat(stop=["a", ""]), "stop[1]"),
    ("stream-not-bool", chat(stream="yes"), "stream"),
    (
        "stream-options-without-stream",
        chat(stream_options={"include_usage": True}),
        "stream_options",
    ),
    (
        "stream-options-bad-value",
        chat(stream=True, stream_options={"include_usage": "x"}),
        "stream_options.include_usage",
    ),
    ("stream-options-extra", chat(stream=True, stream_options={"foo": 1}), "stream_options.foo"),
    ("tools-not-list", chat(tools="f"), "tools"),
    ("tool-type", chat(tools=[{**TOOL, "type": "retrieval"}]), "tools[0].type"),
    (
        "tool-name-pattern",
        chat(tools=[{"type": "function", "function": {"name": "get weather"}}]),
        "tools[0].function.name",
    ),
    ("tools-too-many", chat(tools=[TOOL] * 129), "tools"),
    ("tool-choice-unknown-word", chat(tools=[TOOL], tool_choice="sometimes"), "tool_choice"),
    ("tool-choice-without-tools", chat(tool_choice="auto"), "tool_choice"),
    (
        "tool-choice-names-unknown",
        chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "other"}}),
        "tool_choice",
    ),
    (
        "tool-choice-no-function",
        chat(tools=[TOOL], tool_choice={"type": "function"}),
        "tool_choice.function",
    ),
    ("parallel-tool-calls-not-bool", chat(parallel_tool_calls="no"), "parallel_tool_calls"),
    ("seed-string", chat(seed="1"), "seed"),
    ("random-seed-disagrees", chat(seed=1, random_seed=2), "random_seed"),
    ("user-not-string", chat(user=5), "user"),
    ("response-format-type", chat(response_format={"type": "xml"}), "response_format.type"),
    (
        "response-format-schema-missing",
        chat(response_format={"type": "json_schema"}),
        "response_format",
    ),
    (
        "response-format-schema-on-text",
        chat(response_format={"type": "text", "json_schema": {"name": "x"}}),
        "response_format",
    ),
    (
        "response-format-schema-name",
        chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
    ),
    ("safe-prompt-not-bool", chat(safe_prompt="yes"), "safe_prompt"),
    ("logprobs-unsupported", chat(logprobs=True), "logprobs"),
    ("top-logprobs-unsupported", chat(top_logprobs=3), "top_logprobs"),
    ("top-logprobs-above", chat(top_logprobs=21), "top_logprobs"),
    ("metadata-too-many", chat(metadata={f"k{i}": "v" for i in range(17)}), "metadata"),
    ("metadata-value-long", chat(metadata={"k": "v" * 513}), "metadata.k"),
    ("metadata-value-not-string", chat(metadata={"k": 1}), "metadata.k"),
    ("unknown-argument", chat(foo=1), "foo"),
    ("unknown-arguments", chat(best_of=2, echo=True), "best_of"),
]

COMPLETION_INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("prompt-missing", without(completion(), "prompt"), "prompt"),
    ("prompt-empty-list", completion(prompt=[]), "prompt"),
    ("prompt-not-text", completion(prompt=5), "prompt"),
    ("prompt-item-not-text", completion(prompt=["a", 1]), "prompt[1]"),
    ("model-missing", without(completion(), "model"), "model"),
    ("messages-not-allowed", completion(messages=[USER]), "messages"),
    ("tools-not-allowed", completion(tools=[TOOL]), "tools"),
    ("logprobs-unsupported", completion(logprobs=2), "logprobs"),
    ("logprobs-above", completion(logprobs=6), "logprobs"),
    ("temperature-above", completion(temperature=3), "temperature"),
    ("n-zero", completion(n=0), "n"),
    ("stop-too-many", completion(stop=list("abcde")), "stop"),
    (
        "stream-options-without-stream",
        completion(stream_options={"include_usage": True}),
        "stream_options",
    ),
]


def _assert_names_field(err: InvalidRequest, param: str) -> None:
    assert err.http_status == 400
    assert err.param == param
    assert param in err.message
    body = ErrorResponse.of(err).payload()["error"]
    assert body == {
        "message": err.message,
        "type": "invalid_request_error",
        "param": param,
        "code": None,
    }


@pytest.mark.parametrize(
    ("body", "param"), [c[1:] for c in CHAT_INVALID], ids=[c[0] for c in CHAT_INVALID]
)
def test_chat_rule_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(json.dumps(body).encode())
    _assert_names_field(caught.value, param)


@pytest.mark.parametrize(
    ("body", "param"), [c[1:] for c in COMPLETION_INVALID], ids=[c[0] for c in COMPLETION_INVALID]
)
def test_completion_rule_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_completion_request(json.dumps(body).encode())
    _assert_names_field(caught.value, param)


def test_unknown_arguments_read_like_openai() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(json.dumps(chat(best_of=2, echo=True)).encode())
    assert caught.value.message == "Unrecognized request argument supplied: best_of, echo"


def test_missing_field_message() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(json.dumps(without(chat(), "messages")).encode())
    assert caught.value.message == "Missing required parameter: 'messages'."


def test_range_message_states_rule_and_value() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(json.dumps(chat(temperature=2.5)).encode())
    assert "less than or equal to 2" in caught.value.message
    assert "(got 2.5)" in caught.value.message


# (case id, extra fields, check on the parsed request)
CHAT_VALID: list[tuple[str, dict[str, Any], Any]] = [
    ("minimal", {}, lambda r: r.n == 1 and r.stream is False),
    ("temperature-bounds", {"temperature": 0}, lambda r: r.temperature == 0),
    ("temperature-top", {"temperature": 2}, lambda r: r.temperature == 2),
    ("top-p-bounds", {"top_p": 0}, lambda r: r.top_p == 0),
    ("top-p-top", {"top_p": 1}, lambda r: r.top_p == 1),
    ("top-k-disabled", {"top_k": -1}, lambda r: r.top_k == -1),
    ("top-k", {"top_k": 40}, lambda r: r.top_k == 40),
    ("n-cap", {"n": 16}, lambda r: r.n == 16),
    ("max-tokens", {"max_tokens": 1}, lambda r: r.requested_max_tokens == ("max_tokens", 1)),
    (
        "max-completion-tokens",
        {"max_completion_tokens": 7},
        lambda r: r.requested_max_tokens == ("max_completion_tokens", 7),
    ),
    (
        "both-max-agree",
        {"max_tokens": 7, "max_completion_tokens": 7},
        lambda r: r.requested_max_tokens == ("max_completion_tokens", 7),
    ),
    (
        "penalties-bounds",
        {"presence_penalty": -2, "frequency_penalty": 2},
        lambda r: (r.presence_penalty, r.frequency_penalty) == (-2, 2),
    ),
    ("stop-string", {"stop": "x"}, lambda r: r.stop == ["x"]),
    ("stop-four", {"stop": list("abcd")}, lambda r: r.stop == list("abcd")),
    (
        "stream-usage",
        {"stream": True, "stream_options": {"include_usage": True}},
        lambda r: r.include_usage,
    ),
    ("stream-no-usage", {"stream": True}, lambda r: not r.include_usage),
    ("tool-choice-none-alone", {"tool_choice": "none"}, lambda r: r.tool_choice == "none"),
    ("tool-choice-named", {"tools": [TOOL], "tool_choice": NAMED}, lambda r: r.tools is not None),
    (
        "tool-choice-required",
        {"tools": [TOOL], "tool_choice": "required"},
        lambda r: r.tool_choice == "required",
    ),
    (
        "parallel-tool-calls",
        {"parallel_tool_calls": False},
        lambda r: r.parallel_tool_calls is False,
    ),
    ("random-seed", {"random_seed": 7}, lambda r: r.effective_seed == 7),
    ("seeds-agree", {"seed": 7, "random_seed": 7}, lambda r: r.effective_seed == 7),
    ("json-object", {"response_format": {"type": "json_object"}}, lambda r: r.response_format),
    (
        "json-schema",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            }
        },
        lambda r: r.response_format.json_schema.schema_ == {"type": "object"},
    ),
    ("logprobs-false", {"logprobs": False, "top_logprobs": 0}, lambda r: r.logprobs is False),
    (
        "metadata-cap",
        {"metadata": {f"k{i}": "v" for i in range(16)}},
        lambda r: len(r.metadata) == 16,
    ),
    ("safe-prompt", {"safe_prompt": True}, lambda r: r.safe_prompt),
    ("user", {"user": "u-1"}, lambda r: r.user == "u-1"),
    (
        "tool-round-trip",
        {
            "messages": [
                USER,
                ASSISTANT_CALLS,
                {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
            ]
        },
        lambda r: len(r.messages) == 3,
    ),
    (
        "assistant-prefix-last",
        {"messages": [USER, {"role": "assistant", "content": "Sure", "prefix": True}]},
        lambda r: len(r.messages) == 2,
    ),
    (
        "content-parts",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}]},
        lambda r: len(r.messages) == 1,
    ),
]


@pytest.mark.parametrize(
    ("extra", "check"), [c[1:] for c in CHAT_VALID], ids=[c[0] for c in CHAT_VALID]
)
def test_chat_rule_accepts(extra: dict[str, Any], check: Any) -> None:
    request = parse_chat_request(json.dumps(chat(**extra)).encode())
    assert isinstance(request, ChatCompletionRequest)
    assert check(request)


@pytest.mark.parametrize(
    ("prompt", "expected"), [("hi", ["hi"]), (["a", "b"], ["a", "b"]), ([""], [""])]
)
def test_completion_prompt_forms(prompt: Any, expected: list[str]) -> None:
    request = parse_completion_request(json.dumps(completion(prompt=prompt)).encode())
    assert isinstance(request, CompletionRequest)
    assert request.prompt == expected


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b'{"model": "m",}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
    ids=["empty", "blank", "truncated", "trailing-comma", "nan", "infinity", "not-utf8", "deep"],
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(MalformedJSON) as caught:
        parse_json_body(body)
    assert caught.value.http_status == 400
    assert caught.value.code == "invalid_json"


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"3", b"null"])
def test_body_must_be_object(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_json_body(body)
    assert not isinstance(caught.value, MalformedJSON)
    assert "JSON object" in caught.value.message
