"""Every request rule, valid and invalid: status 400, `param` and a message naming the field.

The invalid tables live in validation_cases.py; test_http_app.py replays them over HTTP.
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
from tests.unit.api.validation_cases import (
    ASSISTANT_CALLS,
    CHAT_INVALID,
    COMPLETION_INVALID,
    NAMED,
    TOOL,
    USER,
    chat,
    completion,
    without,
)


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
    ("logprobs-false", {"logprobs": False}, lambda r: r.logprobs_wanted is None),
    ("logprobs-top", {"logprobs": True, "top_logprobs": 3}, lambda r: r.logprobs_wanted == 3),
    ("logprobs-only", {"logprobs": True}, lambda r: r.logprobs_wanted == 0),
    ("logit-bias", {"logit_bias": {"50256": -100}}, lambda r: r.logit_bias == {"50256": -100}),
    ("n-large", {"n": 17}, lambda r: r.n == 17),
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
