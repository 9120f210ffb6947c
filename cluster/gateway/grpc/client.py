"""`ModelyardClient`: a typed asyncio client for the `modelyard.v1.Inference` API.

    async with ModelyardClient("127.0.0.1:50051", api_key=key) as client:
        request = ChatRequest(model="qwen/qwen3-coder-flash", messages=[user("Hi")])
        async for chunk in client.chat(request, deadline_s=30):
            ...

Requests and responses are the generated messages (`cluster.gateway.grpc.gen.modelyard.v1`,
re-exported here), typed by their .pyi stubs; `user()`, `system()`, `assistant()`,
`tool_result()`, `function_tool()` and `token_prompt()` (a completion prompt given as token
ids, for `CompletionRequest.prompt_token_ids`) build the common pieces. `n` and several
prompts work as over HTTP: choice `i * n + j` is the j-th sample of prompt i.
`deadline_s` is the call's deadline in seconds, sent to the server as the gRPC deadline:
when it passes, the server aborts the engine request.

A failed call raises the typed `cluster.errors` error it stands for — `InvalidRequest` with
`param` naming the field, `ModelNotFound`, `Unauthenticated`, `RateLimited`,
`EngineUnavailable`, `DeadlineExceeded`, … — rebuilt from the status's trailers, or from the
status code alone when gRPC itself failed the call (connection refused: `EngineUnavailable`).
The original `grpc.aio.AioRpcError` is its `__cause__`; `grpc_code(err)` says which status
came back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format, struct_pb2

from cluster.errors import ModelyardError
from cluster.gateway.grpc.gen.modelyard.v1.chat_pb2 import (
    ROLE_ASSISTANT,
    ROLE_SYSTEM,
    ROLE_TOOL,
    ROLE_USER,
    ChatChunk,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    FunctionCall,
    FunctionDefinition,
    Tool,
    ToolCall,
    ToolChoice,
)
from cluster.gateway.grpc.gen.modelyard.v1.completion_pb2 import (
    Completion,
    CompletionRequest,
    TokenIds,
)
from cluster.gateway.grpc.gen.modelyard.v1.models_pb2 import (
    GetModelRequest,
    ListModelsRequest,
    Model,
)
from cluster.gateway.grpc.status import error_from_status
from cluster.gateway.grpc.stubs import InferenceStub, Metadata, UnaryCall, inference_stub

T = TypeVar("T")

__all__ = [
    "ChatChunk",
    "ChatCompletion",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "CompletionRequest",
    "Model",
    "ModelyardClient",
    "TokenIds",
    "Tool",
    "ToolChoice",
    "assistant",
    "function_tool",
    "grpc_code",
    "named_tool_choice",
    "system",
    "token_prompt",
    "tool_result",
    "user",
]


def system(content: str) -> ChatMessage:
    return ChatMessage(role=ROLE_SYSTEM, content=content)


def user(content: str) -> ChatMessage:
    return ChatMessage(role=ROLE_USER, content=content)


def assistant(
    content: str | None = None, tool_calls: Sequence[tuple[str, str, str]] = ()
) -> ChatMessage:
    """An assistant turn; `tool_calls` as (call id, function name, JSON arguments)."""
    message = ChatMessage(
        role=ROLE_ASSISTANT,
        tool_calls=[
            ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments))
            for call_id, name, arguments in tool_calls
        ],
    )
    if content is not None:
        message.content = content
    return message


def tool_result(tool_call_id: str, content: str) -> ChatMessage:
    return ChatMessage(role=ROLE_TOOL, tool_call_id=tool_call_id, content=content)


def function_tool(
    name: str, parameters: Mapping[str, Any] | None = None, description: str | None = None
) -> Tool:
    """A function tool; `parameters` is its JSON Schema."""
    function = FunctionDefinition(name=name)
    if description is not None:
        function.description = description
    if parameters is not None:
        struct = struct_pb2.Struct()
        json_format.ParseDict(dict(parameters), struct)
        function.parameters.CopyFrom(struct)
    return Tool(function=function)


def named_tool_choice(function_name: str) -> ToolChoice:
    """Force a call of this function (one of the request's tools)."""
    return ToolChoice(function_name=function_name)


def token_prompt(ids: Sequence[int]) -> TokenIds:
    """One completion prompt as token ids (append to `CompletionRequest.prompt_token_ids`)."""
    return TokenIds(ids=list(ids))


def grpc_code(err: BaseException) -> grpc.StatusCode | None:
    """The gRPC status a client error came from (its `__cause__`), if any."""
    cause = err.__cause__
    return cause.code() if isinstance(cause, grpc.aio.AioRpcError) else None


def _typed(err: grpc.aio.AioRpcError) -> ModelyardError:
    trailers = tuple(err.trailing_metadata() or ())
    return error_from_status(err.code(), err.details(), trailers)


async def _answer(call: UnaryCall[T]) -> T:
    """A unary call's response; a failed call raises the typed error it stands for."""
    try:
        return await call
    except grpc.aio.AioRpcError as err:
        raise _typed(err) from err


class ModelyardClient:
    """One channel to a modelyard gateway. Use as an async context manager, or `close()`."""

    def __init__(
        self,
        target: str,
        api_key: str | None = None,
        *,
        channel: grpc.aio.Channel | None = None,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._channel = channel or grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self._stub: InferenceStub = inference_stub(self._channel)
        self._metadata: Metadata = (
            (("authorization", f"Bearer {api_key}"),) if api_key is not None else ()
        )

    async def __aenter__(self) -> ModelyardClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    def __repr__(self) -> str:  # never show the key
        return f"ModelyardClient(authenticated={bool(self._metadata)})"

    async def chat(
        self, request: ChatRequest, *, deadline_s: float | None = None
    ) -> AsyncIterator[ChatChunk]:
        """The chat completion as it is generated; the last chunk carries usage and cost."""
        call = self._stub.StreamChat(request, timeout=deadline_s, metadata=self._metadata)
        async for chunk in self._stream(call):
            yield chunk

    async def chat_unary(
        self, request: ChatRequest, *, deadline_s: float | None = None
    ) -> ChatCompletion:
        """The whole chat completion at once."""
        call = self._stub.Chat(request, timeout=deadline_s, metadata=self._metadata)
        return await _answer(call)

    async def complete(
        self, request: CompletionRequest, *, deadline_s: float | None = None
    ) -> AsyncIterator[Completion]:
        """The text completion as it is generated; the last event carries usage and cost."""
        call = self._stub.StreamComplete(request, timeout=deadline_s, metadata=self._metadata)
        async for event in self._stream(call):
            yield event

    async def complete_unary(
        self, request: CompletionRequest, *, deadline_s: float | None = None
    ) -> Completion:
        call = self._stub.Complete(request, timeout=deadline_s, metadata=self._metadata)
        return await _answer(call)

    async def list_models(self, *, deadline_s: float | None = None) -> list[Model]:
        request = ListModelsRequest()
        call = self._stub.ListModels(request, timeout=deadline_s, metadata=self._metadata)
        return list((await _answer(call)).models)

    async def get_model(self, model_id: str, *, deadline_s: float | None = None) -> Model:
        request = GetModelRequest(id=model_id)
        call = self._stub.GetModel(request, timeout=deadline_s, metadata=self._metadata)
        return await _answer(call)

    @staticmethod
    async def _stream(call: Any) -> AsyncIterator[Any]:
        """Responses of a server-streaming call; leaving early cancels the call."""
        finished = False
        try:
            async for item in call:
                yield item
            finished = True
        except grpc.aio.AioRpcError as err:
            finished = True
            raise _typed(err) from err
        finally:
            if not finished:
                call.cancel()
