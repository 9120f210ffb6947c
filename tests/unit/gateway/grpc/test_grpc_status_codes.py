"""Every gRPC status the API promises, through the real server, with the raw stub and the
typed client: the code, the details, and the `modelyard-error-*` trailers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from cluster.config.settings import ServedModel
from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import (
    ContextLengthExceeded,
    DeadlineExceeded,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
    ModelyardError,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from cluster.gateway.grpc.client import (
    ChatRequest,
    CompletionRequest,
    ModelyardClient,
    assistant,
    function_tool,
    grpc_code,
    named_tool_choice,
    tool_result,
    user,
)
from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, models_pb2
from cluster.gateway.grpc.status import CODE_KEY, GENERIC_INTERNAL, KIND_KEY, PARAM_KEY
from cluster.gateway.grpc.stubs import inference_stub
from tests.unit.gateway.grpc.harness import (
    API_KEY,
    DEVSTRAL,
    MAX_MESSAGE_BYTES,
    QWEN,
    Harness,
    start_harness,
    stop_harness,
)

AUTH = (("authorization", f"Bearer {API_KEY}"),)


async def raw_failure(
    harness: Harness, call: Callable[[Any], Any], metadata: Any = AUTH
) -> grpc.aio.AioRpcError:
    """Run `call(stub)` on a plain channel; return the RpcError it must end with."""
    async with grpc.aio.insecure_channel(harness.server.target) as channel:
        stub = inference_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            result = call(stub)
            if hasattr(result, "__aiter__"):
                async for _ in result:
                    pass
            else:
                await result
        return info.value


def trailers(err: grpc.aio.AioRpcError) -> dict[str, str]:
    return {
        key: value for key, value in err.trailing_metadata() or () if key.startswith("modelyard-")
    }


def chat(**fields: Any) -> ChatRequest:
    fields.setdefault("model", QWEN)
    fields.setdefault("messages", [user("hello")])
    return ChatRequest(**fields)


INVALID_CHATS = [
    pytest.param(chat(model=""), "model", id="no-model"),
    pytest.param(chat(messages=[]), "messages", id="no-messages"),
    pytest.param(chat(temperature=2.5), "temperature", id="temperature-range"),
    pytest.param(chat(n=0), "n", id="n-zero"),
    pytest.param(chat(stop=["a", "b", "c", "d", "e"]), "stop", id="too-many-stops"),
    pytest.param(
        chat(messages=[chat_pb2.ChatMessage(content="no role")]), "messages[0].role", id="role"
    ),
    pytest.param(
        chat(messages=[chat_pb2.ChatMessage(role=chat_pb2.ROLE_USER)]),
        "messages[0].content",
        id="user-without-content",
    ),
    pytest.param(
        chat(messages=[user("hi"), tool_result("call_1", "42")]),
        "messages[1].tool_call_id",
        id="unanswered-tool-result",
    ),
    pytest.param(
        chat(messages=[user("hi"), assistant(tool_calls=[("call_1", "f", "{}")])]),
        "messages[1].tool_calls[0].id",
        id="tool-call-without-answer",
    ),
    pytest.param(
        chat(tools=[function_tool("f", {"type": "object"})], tool_choice=named_tool_choice("g")),
        "tool_choice",
        id="unknown-named-tool",
    ),
    pytest.param(chat(tool_choice=named_tool_choice("f")), "tool_choice", id="choice-no-tools"),
    pytest.param(
        chat(tools=[function_tool("bad name!", {"type": "object"})]),
        "tools[0].function.name",
        id="tool-name-pattern",
    ),
]


@pytest.mark.parametrize(("request_", "param"), INVALID_CHATS)
async def test_invalid_chat_is_invalid_argument_naming_the_field(
    harness: Harness, request_: ChatRequest, param: str
) -> None:
    for method in ("Chat", "StreamChat"):
        err = await raw_failure(
            harness, lambda stub, m=method: getattr(stub, m)(request_, metadata=AUTH)
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert trailers(err)[PARAM_KEY] == param
        assert trailers(err)[KIND_KEY] == "InvalidRequest"
        assert param in (err.details() or "")
    with pytest.raises(InvalidRequest) as info:
        await harness.client.chat_unary(request_)
    assert info.value.param == param


async def test_max_tokens_beyond_the_context_window_is_invalid_argument(harness: Harness) -> None:
    request = chat(max_tokens=10_000_000)
    err = await raw_failure(harness, lambda stub: stub.StreamChat(request, metadata=AUTH))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailers(err) == {
        KIND_KEY: "ContextLengthExceeded",
        CODE_KEY: "context_length_exceeded",
        PARAM_KEY: "max_tokens",
    }
    with pytest.raises(ContextLengthExceeded):
        await harness.client.chat_unary(request)


async def test_invalid_completion_names_the_field(harness: Harness) -> None:
    with pytest.raises(InvalidRequest) as info:
        await harness.client.complete_unary(CompletionRequest(model=QWEN))
    assert info.value.param == "prompt"
    with pytest.raises(InvalidRequest) as info:
        async for _ in harness.client.complete(
            CompletionRequest(model=QWEN, prompt=["x"], top_p=2)
        ):
            pass
    assert info.value.param == "top_p"


@pytest.mark.parametrize("method", ["Chat", "StreamChat", "Complete", "StreamComplete", "GetModel"])
async def test_unknown_model_is_not_found(harness: Harness, method: str) -> None:
    requests = {
        "Chat": chat(model="acme/nope"),
        "StreamChat": chat(model="acme/nope"),
        "Complete": CompletionRequest(model="acme/nope", prompt=["x"]),
        "StreamComplete": CompletionRequest(model="acme/nope", prompt=["x"]),
        "GetModel": chat_pb2.ChatRequest.__class__
        and __import__(
            "cluster.gateway.grpc.gen.modelyard.v1.models_pb2", fromlist=["x"]
        ).GetModelRequest(id="acme/nope"),
    }
    err = await raw_failure(
        harness, lambda stub: getattr(stub, method)(requests[method], metadata=AUTH)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert trailers(err)[CODE_KEY] == "model_not_found"
    assert "acme/nope" in (err.details() or "")
    with pytest.raises(ModelNotFound):
        await harness.client.get_model("acme/nope")


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        pytest.param((), "invalid_api_key", id="missing"),
        pytest.param((("authorization", "Bearer sk-wrong"),), "invalid_api_key", id="wrong"),
        pytest.param((("authorization", API_KEY),), "invalid_authorization_header", id="no-scheme"),
        pytest.param((("x-api-key", API_KEY),), "invalid_api_key", id="other-header"),
    ],
)
async def test_auth_failures_are_unauthenticated(
    harness: Harness, metadata: tuple[tuple[str, str], ...], code: str
) -> None:
    calls = [
        lambda stub: stub.StreamChat(chat(), metadata=metadata),
        lambda stub: stub.Chat(chat(), metadata=metadata),
        lambda stub: stub.ListModels(
            models_pb2.ListModelsRequest(),
            metadata=metadata,
        ),
    ]
    for call in calls:
        err = await raw_failure(harness, call)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailers(err)[CODE_KEY] == code
        assert API_KEY not in (err.details() or "")
        assert "sk-wrong" not in (err.details() or "")
    assert harness.engine.stats().prefix_cache_queries == 0  # nothing reached the engine


async def test_typed_client_auth_missing_wrong_and_right(harness: Harness) -> None:
    for key in (None, "sk-wrong"):
        async with harness.client_with(key) as client:
            with pytest.raises(Unauthenticated):
                await client.list_models()
            with pytest.raises(Unauthenticated) as info:
                async for _ in client.chat(chat(max_tokens=2)):
                    pass
            assert grpc_code(info.value) == grpc.StatusCode.UNAUTHENTICATED
    async with harness.client_with(API_KEY) as client:
        assert [m.id for m in await client.list_models()] == [QWEN, DEVSTRAL]
        chunks = [c async for c in client.chat(chat(max_tokens=2), deadline_s=10)]
        assert chunks[-1].usage.completion_tokens == 2
    assert "sk-" not in repr(harness.client)


async def test_oversize_message_is_resource_exhausted(harness: Harness) -> None:
    request = chat(messages=[user("x" * (MAX_MESSAGE_BYTES + 1))])
    err = await raw_failure(harness, lambda stub: stub.Chat(request, metadata=AUTH))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(PayloadTooLarge):
        await harness.client.chat_unary(request)


async def test_model_without_a_running_engine_is_unavailable(harness: Harness) -> None:
    request = chat(model=DEVSTRAL, max_tokens=2)
    for method in ("Chat", "StreamChat"):
        err = await raw_failure(
            harness, lambda stub, m=method: getattr(stub, m)(request, metadata=AUTH)
        )
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert trailers(err)[KIND_KEY] == "EngineUnavailable"
    with pytest.raises(EngineUnavailable):
        await harness.client.chat_unary(request)


async def test_unreachable_server_is_unavailable_to_the_typed_client(harness: Harness) -> None:
    target = harness.server.target
    await harness.server.stop(grace=0)
    async with ModelyardClient(target, api_key=API_KEY) as client:
        with pytest.raises(EngineUnavailable) as info:
            await client.list_models(deadline_s=2)
    assert grpc_code(info.value) == grpc.StatusCode.UNAVAILABLE


class FailingBackend:
    """A `ModelBackend` whose engine fails every request with one error."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncIterator[EngineChunk]:
        raise self.error
        yield EngineChunk()  # pragma: no cover - makes this an async generator

    async def health(self) -> dict[str, bool]:
        return {QWEN: False, DEVSTRAL: False}


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (
            PermissionDenied("key may not use this model"),
            grpc.StatusCode.PERMISSION_DENIED,
            "PermissionDenied",
        ),
        (RateLimited("slow down"), grpc.StatusCode.RESOURCE_EXHAUSTED, "RateLimited"),
        (PayloadTooLarge("too big"), grpc.StatusCode.RESOURCE_EXHAUSTED, "PayloadTooLarge"),
        (EngineUnavailable("replica died"), grpc.StatusCode.UNAVAILABLE, "EngineUnavailable"),
        (DeadlineExceeded("too slow"), grpc.StatusCode.DEADLINE_EXCEEDED, "DeadlineExceeded"),
        (ModelyardError("a bug with secrets"), grpc.StatusCode.INTERNAL, "ModelyardError"),
        (RuntimeError("a bug with secrets"), grpc.StatusCode.INTERNAL, "ModelyardError"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
async def test_core_errors_map_to_status_codes(
    error: BaseException, status: grpc.StatusCode, kind: str
) -> None:
    harness, engines = await start_harness(FailingBackend(error))
    try:
        for method in ("Chat", "StreamChat"):
            err = await raw_failure(
                harness, lambda stub, m=method: getattr(stub, m)(chat(), metadata=AUTH)
            )
            assert err.code() == status, method
            assert trailers(err)[KIND_KEY] == kind
            if status == grpc.StatusCode.INTERNAL:
                assert err.details() == GENERIC_INTERNAL
            else:
                assert err.details() == str(error)
        with pytest.raises(ModelyardError) as info:
            await harness.client.chat_unary(chat())
        assert type(info.value).__name__ == kind
    finally:
        await stop_harness(harness, engines)
