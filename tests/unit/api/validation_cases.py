"""Request bodies and the param each must be rejected with: one table per endpoint.

Shared by the parser tests (test_validation_table.py) and the HTTP tests (test_http_app.py).
"""

from __future__ import annotations

from typing import Any

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
        "content-part-unknown-type",
        chat(messages=[{"role": "user", "content": [{"type": "image"}]}]),
        "messages[0].content[0].type",
    ),
    (
        "image-part-without-image-url",
        chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        "messages[0].content[0].image_url",
    ),
    (
        "media-part-in-system-message",
        chat(
            messages=[
                {
                    "role": "system",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
                }
            ]
        ),
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
    ("logprobs-not-bool", chat(logprobs=1), "logprobs"),
    ("top-logprobs-without-logprobs", chat(top_logprobs=3), "top_logprobs"),
    ("logit-bias-above", chat(logit_bias={"5": 101}), "logit_bias.5"),
    ("logit-bias-key-not-id", chat(logit_bias={"a": 1}), "logit_bias.a"),
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
    ("prompt-mixed-kinds", completion(prompt=["a", [1, 2]]), "prompt"),
    ("prompt-empty-token-list", completion(prompt=[[1], []]), "prompt[1]"),
    ("prompt-token-negative", completion(prompt=[[1], [-2]]), "prompt[1][0]"),
    ("prompt-token-float", completion(prompt=[1, 2.5]), "prompt[0]"),
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
