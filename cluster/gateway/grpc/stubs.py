"""Typed doors into the generated `inference_pb2_grpc` module (which has no type stubs).

The generated `*_pb2.pyi` files type the messages; the service module is plain Python, so
its stub and registration function are wrapped here once, with their real call shapes, and
the rest of the code stays mypy-strict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any, Protocol, TypeVar, cast

from cluster.gateway.grpc.gen.modelyard.v1 import (
    chat_pb2,
    completion_pb2,
    inference_pb2_grpc,
    models_pb2,
)

Req = TypeVar("Req", contravariant=True)
Resp = TypeVar("Resp", covariant=True)
Metadata = Sequence[tuple[str, str]]


class UnaryCall(Protocol[Resp]):
    """`grpc.aio.UnaryUnaryCall`: awaitable, with the status it ended with."""

    def __await__(self) -> Generator[Any, None, Resp]: ...

    async def trailing_metadata(self) -> Any: ...


class StreamCall(Protocol[Resp]):
    """`grpc.aio.UnaryStreamCall`: async-iterable responses."""

    def __aiter__(self) -> AsyncIterator[Resp]: ...

    def cancel(self) -> bool: ...


class UnaryUnary(Protocol[Req, Resp]):
    def __call__(
        self, request: Req, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> UnaryCall[Resp]: ...


class UnaryStream(Protocol[Req, Resp]):
    def __call__(
        self, request: Req, *, timeout: float | None = None, metadata: Metadata | None = None
    ) -> StreamCall[Resp]: ...


class InferenceStub(Protocol):
    @property
    def Chat(self) -> UnaryUnary[chat_pb2.ChatRequest, chat_pb2.ChatCompletion]: ...

    @property
    def StreamChat(self) -> UnaryStream[chat_pb2.ChatRequest, chat_pb2.ChatChunk]: ...

    @property
    def Complete(
        self,
    ) -> UnaryUnary[completion_pb2.CompletionRequest, completion_pb2.Completion]: ...

    @property
    def StreamComplete(
        self,
    ) -> UnaryStream[completion_pb2.CompletionRequest, completion_pb2.Completion]: ...

    @property
    def ListModels(
        self,
    ) -> UnaryUnary[models_pb2.ListModelsRequest, models_pb2.ListModelsResponse]: ...

    @property
    def GetModel(self) -> UnaryUnary[models_pb2.GetModelRequest, models_pb2.Model]: ...


def inference_stub(channel: Any) -> InferenceStub:
    """A client stub on a `grpc.aio.Channel`."""
    return cast(InferenceStub, inference_pb2_grpc.InferenceStub(channel))  # type: ignore[no-untyped-call]


def add_inference_servicer(servicer: inference_pb2_grpc.InferenceServicer, server: Any) -> None:
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
