"""Core responses → protos, pricing quotes → Cost, and the error ↔ status table."""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from cluster.api.responses import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChatMessageOut,
    CompletionUsage,
    FunctionCallDelta,
    FunctionCallOut,
    PromptTokensDetails,
    ToolCallDeltaOut,
    ToolCallOut,
)
from cluster.config import ModelDeployment, ServedModel, load_builtin_catalog
from cluster.engine import Usage
from cluster.errors import (
    ConfigError,
    ContextLengthExceeded,
    DeadlineExceeded,
    EngineUnavailable,
    HeadersTooLarge,
    InvalidRequest,
    MalformedJSON,
    ModelNotFound,
    ModelyardError,
    Overloaded,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    Unauthenticated,
)
from cluster.gateway.grpc.gen.modelyard.v1 import common_pb2
from cluster.gateway.grpc.responses import (
    chat_chunk_to_proto,
    chat_completion_to_proto,
    cost_to_proto,
)
from cluster.gateway.grpc.status import (
    CODE_KEY,
    GENERIC_INTERNAL,
    KIND_KEY,
    PARAM_KEY,
    PUSHBACK_KEY,
    RETRY_AFTER_KEY,
    error_from_status,
    public_error,
    status_of,
    trailers_of,
)
from cluster.pricing import PriceBook

USAGE = CompletionUsage(
    prompt_tokens=40,
    completion_tokens=5,
    total_tokens=45,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=32),
)


def test_chunk_keeps_presence_tool_call_pieces_and_cached_tokens() -> None:
    chunk = ChatCompletionChunk(
        id="chatcmpl-1",
        created=7,
        model="m",
        system_fingerprint=None,
        choices=[
            ChatChunkChoice(
                index=1,
                delta=ChatDelta(
                    role="assistant",
                    content="",
                    tool_calls=[
                        ToolCallDeltaOut(
                            index=0,
                            id="call_a",
                            type="function",
                            function=FunctionCallDelta(name="f", arguments=""),
                        ),
                        ToolCallDeltaOut(index=0, function=FunctionCallDelta(arguments='{"x"')),
                    ],
                ),
                finish_reason="tool_calls",
            )
        ],
        usage=USAGE,
    )
    out = chat_chunk_to_proto(chunk)
    assert not out.HasField("system_fingerprint")
    (choice,) = out.choices
    assert choice.index == 1 and choice.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert choice.delta.role == "assistant"
    assert choice.delta.HasField("content") and choice.delta.content == ""
    assert not choice.delta.HasField("reasoning_content")
    first, second = choice.delta.tool_calls
    assert (first.id, first.name, first.arguments) == ("call_a", "f", "")
    assert not second.HasField("id") and not second.HasField("name")
    assert second.arguments == '{"x"'
    assert (out.usage.prompt_tokens, out.usage.cached_tokens, out.usage.total_tokens) == (
        40,
        32,
        45,
    )


def test_chunk_without_usage_has_no_usage() -> None:
    chunk = ChatCompletionChunk(
        id="c",
        created=1,
        model="m",
        system_fingerprint="fp",
        choices=[ChatChunkChoice(index=0, delta=ChatDelta(content="x"))],
    )
    out = chat_chunk_to_proto(chunk)
    assert not out.HasField("usage") and out.system_fingerprint == "fp"
    assert out.choices[0].finish_reason == common_pb2.FINISH_REASON_UNSPECIFIED


def test_completion_message_with_only_tool_calls_has_no_content() -> None:
    response = ChatCompletion(
        id="c",
        created=1,
        model="m",
        system_fingerprint="fp",
        choices=[
            ChatChoice(
                index=0,
                message=ChatMessageOut(
                    content=None,
                    reasoning_content="thought",
                    tool_calls=[
                        ToolCallOut(id="call_1", function=FunctionCallOut(name="f", arguments="{}"))
                    ],
                ),
                finish_reason="tool_calls",
            )
        ],
        usage=USAGE,
    )
    (choice,) = chat_completion_to_proto(response).choices
    assert not choice.message.HasField("content")
    assert choice.message.reasoning_content == "thought"
    assert [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls] == [
        ("call_1", "f", "{}")
    ]


def _served(model_id: str) -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id))


def test_cost_is_exact_decimal_strings_from_the_price_book() -> None:
    book = PriceBook([_served("qwen/qwen3-coder-flash")])
    quote = book.cost(
        "qwen/qwen3-coder-flash",
        Usage(prompt_tokens=1000, completion_tokens=100, cached_tokens=512),
    )
    cost = cost_to_proto(quote)
    assert cost.priced and cost.currency == "RUB"
    assert [(line.kind, line.tokens) for line in cost.lines] == [
        ("input", 488),
        ("cache_read", 512),
        ("output", 100),
    ]
    assert Decimal(cost.total) == sum(Decimal(line.amount) for line in cost.lines)
    assert (
        Decimal(cost.total) == (488 * Decimal(30) + 512 * Decimal(8) + 100 * Decimal(151)) / 10**6
    )
    assert cost.tier_max_prompt_tokens == 32000


def test_no_price_table_says_so() -> None:
    cost = cost_to_proto(None)
    assert not cost.priced and cost.note and not cost.total and not cost.lines


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidRequest("x", param="n"), grpc.StatusCode.INVALID_ARGUMENT),
        (ContextLengthExceeded("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (MalformedJSON("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (ModelNotFound("x"), grpc.StatusCode.NOT_FOUND),
        (Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (RateLimited("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (PayloadTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (EngineUnavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (Overloaded("x", retry_after_s=2), grpc.StatusCode.UNAVAILABLE),
        (DeadlineExceeded("x"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (RequestTimeout("x", param="body"), grpc.StatusCode.DEADLINE_EXCEEDED),
        (HeadersTooLarge("x", param="headers"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ModelyardError("x"), grpc.StatusCode.INTERNAL),
        (ConfigError("x"), grpc.StatusCode.INTERNAL),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.name,
)
def test_status_table(error: ModelyardError, status: grpc.StatusCode) -> None:
    assert status_of(error) == status
    if status == grpc.StatusCode.INTERNAL:
        assert public_error(error).message == GENERIC_INTERNAL
        return
    assert public_error(error) is error
    back = error_from_status(status, error.message, trailers_of(error))
    assert type(back) is type(error)
    assert (back.message, back.param, back.code) == (error.message, error.param, error.code)
    assert back.retry_after_s == error.retry_after_s


def test_overloaded_carries_grpc_pushback_in_milliseconds() -> None:
    trailers = dict(trailers_of(Overloaded("busy", retry_after_s=3)))
    assert trailers == {
        KIND_KEY: "Overloaded",
        CODE_KEY: "overloaded",
        RETRY_AFTER_KEY: "3",
        PUSHBACK_KEY: "3000",
    }


def test_trailers_name_kind_code_and_param_only_when_set() -> None:
    assert dict(trailers_of(InvalidRequest("bad", param="messages[0].role"))) == {
        KIND_KEY: "InvalidRequest",
        PARAM_KEY: "messages[0].role",
    }
    assert dict(trailers_of(ModelNotFound("x"))) == {
        KIND_KEY: "ModelNotFound",
        CODE_KEY: "model_not_found",
    }


def test_untyped_exceptions_stay_private() -> None:
    public = public_error(ValueError("password=hunter2"))
    assert public.message == GENERIC_INTERNAL and "hunter2" not in public.message


def test_grpc_own_oversize_refusal_is_payload_too_large() -> None:
    details = "Received message larger than max (65571 vs. 65536)"
    err = error_from_status(grpc.StatusCode.RESOURCE_EXHAUSTED, details, [])
    assert type(err) is PayloadTooLarge


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, EngineUnavailable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, RateLimited),
        (grpc.StatusCode.UNAUTHENTICATED, Unauthenticated),
        (grpc.StatusCode.UNKNOWN, ModelyardError),
    ],
)
def test_status_without_our_trailers_maps_by_code(status: grpc.StatusCode, kind: type) -> None:
    err = error_from_status(status, "from grpc", [("other", "x"), ("bin-bin", b"\x00")])
    assert type(err) is kind and err.message == "from grpc"
