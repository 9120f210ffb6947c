"""Property-based tests of the gRPC front door, requests generated from the message
descriptors (`proto_strategies`), fixed seeds (`derandomize`).

520 calls over a real channel to the live gateway's gRPC server, spread over Chat,
StreamChat, Complete and StreamComplete. Every call ends OK or with a status a client
error deserves (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED for an oversized message)
and the typed trailers naming it — never INTERNAL, UNKNOWN, UNAVAILABLE, or a deadline
(a hang). Afterwards a valid call succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, inference_pb2_grpc
from tests.unit.fuzz.gateway import MODELS, LiveGateway
from tests.unit.fuzz.proto_strategies import CHAT_REQUESTS, COMPLETION_REQUESTS

CALL_TIMEOUT_S = 15.0
ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
QUOTA = 260  # per request kind: 520 calls in all
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def stub(gateway: LiveGateway) -> Iterator[Any]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield inference_pb2_grpc.InferenceStub(channel)  # type: ignore[no-untyped-call]
        request = chat_pb2.ChatRequest(model=MODELS[0], max_tokens=3)
        request.messages.add(role=chat_pb2.ROLE_USER, content="hi")
        answer = inference_pb2_grpc.InferenceStub(channel).Chat(request, timeout=CALL_TIMEOUT_S)  # type: ignore[no-untyped-call]
        assert answer.choices


def call(method: Any, request: Message, streaming: bool) -> grpc.StatusCode:
    try:
        if streaming:
            for _ in method(request, timeout=CALL_TIMEOUT_S):
                pass
        else:
            method(request, timeout=CALL_TIMEOUT_S)
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
        assert code in ALLOWED, f"{code}: {err.details()}"  # type: ignore[attr-defined]
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            trailers = dict(err.trailing_metadata() or ())  # type: ignore[attr-defined]
            assert any("kind" in key for key in trailers), trailers
        return code
    return grpc.StatusCode.OK


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.mark.parametrize(
    ("kind", "requests"), [("chat", CHAT_REQUESTS), ("completion", COMPLETION_REQUESTS)]
)
def test_generated_requests_never_fail_the_server(
    stub: Any, kind: str, requests: st.SearchStrategy[Message]
) -> None:
    codes: list[grpc.StatusCode] = []
    unary, streamed = (
        (stub.Chat, stub.StreamChat) if kind == "chat" else (stub.Complete, stub.StreamComplete)
    )

    @fuzz_settings(QUOTA)
    @given(request=requests, streaming=st.booleans())
    def run(request: Message, streaming: bool) -> None:
        codes.append(call(streamed if streaming else unary, request, streaming))

    run()
    assert len(codes) >= QUOTA
    assert codes.count(grpc.StatusCode.OK) > len(codes) // 10  # generation reaches engines
