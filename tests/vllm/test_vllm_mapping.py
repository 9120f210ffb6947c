"""The pure halves of the vLLM adapter (no engine start): request bodies, stream events in
the shape vLLM 0.32 emits them, error mapping, and the typed args vLLM accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cluster.api.messages import (
    AssistantMessage,
    FunctionDefinition,
    NamedFunction,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    Tool,
    UserMessage,
)
from cluster.config import load_builtin_catalog
from cluster.config.settings import ModelDeployment, ServedModel
from cluster.config.vllm_args import VLLMServingArgs
from cluster.config.vllm_config import vllm_config_for
from cluster.engine import EngineRequest, SamplingParams, ToolCallDelta, Usage
from cluster.errors import (
    ConfigError,
    ContextLengthExceeded,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    ModelyardError,
)
from deployments.engines.vllm.errors import error_from_exception, error_from_fields
from deployments.engines.vllm.requests import (
    chat_body,
    chat_request,
    completion_body,
    completion_request,
)
from deployments.engines.vllm.serving import check_tool_parser, check_window
from deployments.engines.vllm.stream import StreamMapper

pytestmark = pytest.mark.vllm


def sse(data: dict[str, Any] | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def delta_event(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse({"id": "chatcmpl-r0", "object": "chat.completion.chunk", "choices": [choice]})


def usage_event(prompt: int, completion: int, cached: int | None) -> str:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached, "created_cache_tokens": 0}
    return sse(
        {"id": "chatcmpl-r0", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    )


ROLE = delta_event({"role": "assistant", "content": ""})


def run(events: list[str]) -> tuple[list[Any], Any]:
    mapper = StreamMapper(replica_id="r0", prompt_param="messages")
    chunks = [chunk for event in events for chunk in mapper.feed(event)]
    return chunks, mapper.finish()


def test_text_stream_holds_the_finish_chunk_and_merges_usage() -> None:
    chunks, final = run(
        [
            ROLE,
            delta_event({"content": "over"}),
            delta_event({"content": " the"}),
            delta_event({"content": " top"}, finish="length"),
            usage_event(377, 3, 256),
            sse("[DONE]"),
        ]
    )
    assert [c.text for c in chunks] == ["over", " the"]
    assert chunks[0].replica_id == "r0" and chunks[1].replica_id is None
    assert final.text == " top" and final.finish_reason == "length"
    assert final.usage == Usage(prompt_tokens=377, completion_tokens=3, cached_tokens=256)


def test_named_tool_call_deltas() -> None:
    first = {
        "content": None,
        "tool_calls": [
            {
                "id": "chatcmpl-tool-9",
                "type": "function",
                "index": 0,
                "function": {"name": "get_weather"},
            }
        ],
    }
    more = {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": '{"c'}}]}
    last = {"content": None, "tool_calls": [{"index": 0, "function": {"arguments": '":1}'}}]}
    chunks, final = run(
        [
            ROLE,
            delta_event(first),
            delta_event(more),
            delta_event(last, "stop"),
            usage_event(18, 9, 0),
        ]
    )
    assert chunks[0].tool_calls == [
        ToolCallDelta(index=0, id="chatcmpl-tool-9", name="get_weather", arguments="")
    ]
    assert chunks[1].tool_calls[0].arguments == '{"c'
    assert final.tool_calls[0].arguments == '":1}' and final.finish_reason == "stop"


def test_reasoning_deltas_and_completion_text() -> None:
    chunks, _ = run(
        [delta_event({"reasoning": "hm"}, None), delta_event({}, "stop"), usage_event(1, 1, None)]
    )
    assert chunks[0].reasoning == "hm"
    mapper = StreamMapper(replica_id="r0", prompt_param="prompt")
    got = mapper.feed(sse({"choices": [{"index": 0, "text": "abc", "finish_reason": None}]}))
    assert got[0].text == "abc"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("repetition", "stop")],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    _, final = run([delta_event({"content": "x"}, reason), usage_event(1, 1, 0)])
    assert final.finish_reason == expected


def test_an_aborted_stream_has_no_final_chunk() -> None:
    mapper = StreamMapper(replica_id="r0", prompt_param="messages")
    mapper.feed(delta_event({"content": ""}, "abort"))
    assert mapper.aborted and mapper.finish() is None


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (
            {"error": {"message": "bad", "type": "BadRequestError", "param": None, "code": 400}},
            InvalidRequest,
        ),
        ({"error": {"message": "gone", "type": "x", "code": 503}}, EngineUnavailable),
        ({"error": "??"}, ModelyardError),
    ],
)
def test_error_events_raise_typed_errors(event: dict[str, Any], error: type[Exception]) -> None:
    mapper = StreamMapper(replica_id="r0", prompt_param="messages")
    with pytest.raises(error):
        mapper.feed(sse(event))


def test_generation_error_finish_and_truncated_stream() -> None:
    mapper = StreamMapper(replica_id="r0", prompt_param="messages")
    with pytest.raises(EngineUnavailable):
        mapper.feed(delta_event({"content": ""}, "error"))
    with pytest.raises(EngineUnavailable):
        StreamMapper(replica_id="r0", prompt_param="messages").finish()


TOO_LONG = "This model's maximum context length is 1024 tokens. However, ..."
INPUT_LENGTH = "Input length (2000) exceeds model's maximum context length (1024)."


@pytest.mark.parametrize(
    ("code", "message", "param", "error", "expected_param"),
    [
        (400, TOO_LONG, "input_tokens", ContextLengthExceeded, "messages"),
        (400, "prompt contains 9000 characters", "input_text", ContextLengthExceeded, "messages"),
        (400, INPUT_LENGTH, None, ContextLengthExceeded, "messages"),
        (400, "Tool 'x' has not been passed.", "tool_choice", InvalidRequest, "tool_choice"),
        (404, "The model `m:zzz` does not exist.", "model", ModelNotFound, "model"),
        (422, "unprocessable", "x", InvalidRequest, "x"),
        (503, "overloaded", None, EngineUnavailable, None),
        (500, "boom", None, ModelyardError, None),
    ],
)  # fmt: skip
def test_error_table(
    code: int, message: str, param: str | None, error: type[Exception], expected_param: str | None
) -> None:
    err = error_from_fields(code, message, param, prompt_param="messages")
    assert type(err) is error
    assert err.param == expected_param
    if code < 500:
        assert err.message == message


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (ValueError("bad value"), InvalidRequest),
        (NotImplementedError("nope"), InvalidRequest),
        (RuntimeError("internal"), ModelyardError),
        (ModelNotFound("already typed"), ModelNotFound),
    ],
)
def test_exceptions_are_classified_like_vllms_server(
    exc: Exception, error: type[Exception]
) -> None:
    assert type(error_from_exception(exc, prompt_param="prompt")) is error


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "fits"),
    [(10, 1014, True), (10, 1015, False), (1023, None, True), (1024, None, False)],
)
def test_window_check(prompt: int, max_tokens: int | None, fits: bool) -> None:
    if fits:
        check_window(prompt, max_tokens, 1024, param="messages")
    else:
        with pytest.raises(ContextLengthExceeded, match="1024") as caught:
            check_window(prompt, max_tokens, 1024, param="messages")
        assert caught.value.param == "messages"


def _request(**fields: Any) -> EngineRequest:
    return EngineRequest(request_id="abc", model="m", **fields)


def test_chat_body_carries_sampling_tools_and_salt() -> None:
    tool = Tool(type="function", function=FunctionDefinition(name="f", parameters={}))
    request = _request(
        messages=[
            SystemMessage(role="system", content=[TextPart(type="text", text="sys")]),
            UserMessage(role="user", content="hi"),
        ],
        tools=[tool],
        tool_choice=NamedToolChoice(type="function", function=NamedFunction(name="f")),
        max_tokens=7,
        sampling=SamplingParams(temperature=0.2, top_k=5, seed=3, stop=["\n"]),
        cache_salt="tenant-1",
    )
    body = chat_body(request, model_name="served")
    assert body["model"] == "served" and body["request_id"] == "abc"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": [{"type": "text", "text": "sys"}]}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert (body["max_tokens"], body["temperature"], body["top_k"], body["seed"]) == (7, 0.2, 5, 3)
    assert body["stop"] == ["\n"] and body["cache_salt"] == "tenant-1"
    assert "continue_final_message" not in body
    vllm_request = chat_request(request, model_name="served")
    assert vllm_request.cache_salt == "tenant-1" and vllm_request.stream


def test_assistant_prefix_continues_the_final_message() -> None:
    request = _request(
        messages=[
            UserMessage(role="user", content="hi"),
            AssistantMessage(role="assistant", content="Sure,", prefix=True, reasoning_content="r"),
        ]
    )
    body = chat_body(request, model_name="m")
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["messages"][1] == {"role": "assistant", "content": "Sure,"}


def test_completion_body() -> None:
    body = completion_body(_request(prompt="once upon", max_tokens=3), model_name="m")
    assert body["prompt"] == "once upon" and body["max_tokens"] == 3 and body["stream"]


@pytest.mark.parametrize("model_id", [spec.id for spec in load_builtin_catalog().models])
def test_vllm_accepts_every_catalog_models_generated_args(model_id: str, tmp_path: Path) -> None:
    """Field names and values of the typed args are ones vLLM's AsyncEngineArgs takes
    (weights from a local folder: vLLM resolves hub ids at construction)."""
    from vllm.config.kv_events import KVEventsConfig
    from vllm.engine.arg_utils import AsyncEngineArgs

    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    served = ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, engine="vllm"))
    config = vllm_config_for(
        served, model_path=str(tmp_path), kv_events_endpoint="tcp://127.0.0.1:5557"
    )
    events = config.engine.kv_events_config
    args = AsyncEngineArgs(
        **config.engine.engine_kwargs(),
        kv_events_config=KVEventsConfig(**events.model_dump()) if events else None,
    )
    assert args.tensor_parallel_size * args.pipeline_parallel_size == spec.parallelism.gpus
    assert args.enable_prefix_caching is spec.prefix_caching


@pytest.mark.parametrize(
    ("parser", "ok"), [("hermes", True), ("qwen3_coder", True), ("mistral", True), ("nope", False)]
)
def test_tool_parser_is_checked_before_the_engine_starts(parser: str, ok: bool) -> None:
    args = VLLMServingArgs(served_model_name="m", tool_call_parser=parser)
    if ok:
        check_tool_parser(args, model_id="m")
    else:
        with pytest.raises(ConfigError, match=r"catalog\[m\]\.tool_parser: 'nope'"):
            check_tool_parser(args, model_id="m")


def test_token_id_prompts_logprobs_and_logit_bias_reach_vllm() -> None:
    sampling = SamplingParams(logprobs=2, logit_bias={"42": -100.0})
    body = completion_body(_request(prompt_token_ids=[1, 2, 3], sampling=sampling), model_name="m")
    assert body["prompt"] == [1, 2, 3]
    assert body["logprobs"] == 2 and body["logit_bias"] == {"42": -100.0}
    assert completion_request(_request(prompt_token_ids=[1, 2, 3]), model_name="m").prompt == [
        1,
        2,
        3,
    ]
    chat = _request(messages=[UserMessage(role="user", content="hi")], sampling=sampling)
    body = chat_body(chat, model_name="m")
    assert (body["logprobs"], body["top_logprobs"], body["logit_bias"]) == (True, 2, {"42": -100.0})
    parsed = chat_request(chat, model_name="m")  # vLLM's own request model accepts them
    assert parsed.logprobs is True and parsed.top_logprobs == 2


def test_chat_logprobs_are_read_per_token() -> None:
    top = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}, {"token": "Yo", "logprob": -2.5}]
    logprobs = {
        "content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": top}]
    }
    event = sse(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "Hi"},
                    "logprobs": logprobs,
                    "finish_reason": None,
                }
            ]
        }
    )
    mapper = StreamMapper(replica_id="r0", prompt_param="messages")
    [chunk] = mapper.feed(event)
    assert [(t.token, t.logprob, t.bytes) for t in chunk.logprobs] == [("Hi", -0.1, [72, 105])]
    assert [(a.token, a.logprob) for a in chunk.logprobs[0].top_logprobs] == [
        ("Hi", -0.1),
        ("Yo", -2.5),
    ]


def test_completion_logprobs_are_read_from_parallel_lists() -> None:
    logprobs = {
        "tokens": ["a", "b"],
        "token_logprobs": [-0.5, None],
        "top_logprobs": [{"a": -0.5, "c": -1.0}, None],
        "text_offset": [0, 1],
    }
    event = sse(
        {"choices": [{"index": 0, "text": "ab", "logprobs": logprobs, "finish_reason": None}]}
    )
    mapper = StreamMapper(replica_id="r0", prompt_param="prompt")
    [chunk] = mapper.feed(event)
    assert [(t.token, t.logprob) for t in chunk.logprobs] == [("a", -0.5), ("b", -9999.0)]
    assert {a.token for a in chunk.logprobs[0].top_logprobs} == {"a", "c"}
    assert chunk.logprobs[1].top_logprobs == []
