"""`InferenceServicer`: the `modelyard.v1.Inference` service over the one `GatewayService`.

Each call: authenticate the `authorization` metadata → proto request → the HTTP API's
validated request model (`cluster.gateway.grpc.requests`) → the same `GatewayService` method the
HTTP app calls → proto response (`cluster.gateway.grpc.responses`). Errors are translated once,
here (`cluster.gateway.grpc.status`): a typed error aborts with its status code and trailers; any
other exception is logged with its traceback and answered INTERNAL with a generic message.

Deadlines: the caller's deadline (`context.time_remaining()`) bounds every await on the
core — the unary call as a whole, each next chunk of a stream. When it passes, the core's
stream is closed, which closes the engine stream (the engine aborts the request and frees
its KV blocks), and the call ends DEADLINE_EXCEEDED. gRPC also cancels the handler task when
the deadline passes or the client goes away; the same closing path runs then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, NoReturn, Protocol, TypeVar

import grpc

from cluster.errors import DeadlineExceeded
from cluster.gateway.auth import Authenticator, Principal
from cluster.gateway.grpc.gen.modelyard.v1 import (
    chat_pb2,
    completion_pb2,
    inference_pb2_grpc,
    models_pb2,
)
from cluster.gateway.grpc.requests import chat_request, completion_request
from cluster.gateway.grpc.responses import (
    chat_chunk_to_proto,
    chat_completion_to_proto,
    completion_to_proto,
    model_list_to_proto,
    model_to_proto,
)
from cluster.gateway.grpc.status import public_error, status_of, trailers_of
from cluster.gateway.service.gateway import GatewayService
from cluster.gateway.service.streams import within_deadline

_log = logging.getLogger(__name__)

AUTHORIZATION = "authorization"
T = TypeVar("T")
Out = TypeVar("Out")


class ServicerContext(Protocol):
    """The part of `grpc.aio.ServicerContext` this servicer uses."""

    def invocation_metadata(self) -> Any: ...

    def time_remaining(self) -> float | None: ...

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> NoReturn: ...


def authorization_of(context: ServicerContext) -> str | None:
    """The `authorization` metadata value (keys arrive lowercased)."""
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION:
            return value if isinstance(value, str) else None
    return None


def deadline_of(context: ServicerContext) -> float | None:
    """The caller's deadline on the running loop's clock, or None without one."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    return asyncio.get_running_loop().time() + max(0.0, remaining)


def _expired() -> DeadlineExceeded:
    return DeadlineExceeded("The caller's deadline passed before the request finished.")


async def abort_with(context: ServicerContext, err: BaseException) -> NoReturn:
    public = public_error(err)
    if public is not err:
        _log.error("gRPC call failed", exc_info=err)
    await context.abort(status_of(public), public.message, trailers_of(public))


async def _bounded(call: Awaitable[T], deadline: float | None) -> T:
    try:
        async with asyncio.timeout_at(deadline):
            return await call
    except TimeoutError:
        raise _expired() from None


async def _stream(
    source: AsyncIterator[T], convert: Callable[[T], Out], deadline: float | None
) -> AsyncIterator[Out]:
    """`source` converted item by item, each wait bounded by the deadline; `source` is
    closed however this ends (deadline, error, the caller going away)."""
    bounded = within_deadline(source, deadline, _expired)
    async with aclosing(bounded):
        async for item in bounded:
            yield convert(item)


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    def __init__(self, service: GatewayService, authenticator: Authenticator) -> None:
        self._service = service
        self._auth = authenticator

    async def _principal(self, context: ServicerContext) -> Principal:
        return await self._auth.authenticate(authorization_of(context))

    async def Chat(
        self, request: chat_pb2.ChatRequest, context: ServicerContext
    ) -> chat_pb2.ChatCompletion:
        try:
            caller = await self._principal(context)
            parsed = chat_request(request, stream=False)
            response = await _bounded(self._service.chat(parsed, caller), deadline_of(context))
            return chat_completion_to_proto(response)
        except Exception as err:
            await abort_with(context, err)

    async def StreamChat(
        self, request: chat_pb2.ChatRequest, context: ServicerContext
    ) -> AsyncIterator[chat_pb2.ChatChunk]:
        try:
            caller = await self._principal(context)
            parsed = chat_request(request, stream=True)
            chunks = self._service.stream_chat(parsed, caller)
            async for chunk in _stream(chunks, chat_chunk_to_proto, deadline_of(context)):
                yield chunk
        except Exception as err:
            await abort_with(context, err)

    async def Complete(
        self, request: completion_pb2.CompletionRequest, context: ServicerContext
    ) -> completion_pb2.Completion:
        try:
            caller = await self._principal(context)
            parsed = completion_request(request, stream=False)
            response = await _bounded(self._service.complete(parsed, caller), deadline_of(context))
            return completion_to_proto(response)
        except Exception as err:
            await abort_with(context, err)

    async def StreamComplete(
        self, request: completion_pb2.CompletionRequest, context: ServicerContext
    ) -> AsyncIterator[completion_pb2.Completion]:
        try:
            caller = await self._principal(context)
            parsed = completion_request(request, stream=True)
            events = self._service.stream_complete(parsed, caller)
            async for event in _stream(events, completion_to_proto, deadline_of(context)):
                yield event
        except Exception as err:
            await abort_with(context, err)

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: ServicerContext
    ) -> models_pb2.ListModelsResponse:
        try:
            await self._principal(context)
            return model_list_to_proto(self._service.list_models())
        except Exception as err:
            await abort_with(context, err)

    async def GetModel(
        self, request: models_pb2.GetModelRequest, context: ServicerContext
    ) -> models_pb2.Model:
        try:
            await self._principal(context)
            return model_to_proto(self._service.get_model(request.id))
        except Exception as err:
            await abort_with(context, err)
