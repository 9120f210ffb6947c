"""Every grpcurl body in docs/GRPC.md parses into its request and succeeds on a live server."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, completion_pb2, models_pb2
from cluster.gateway.grpc.stubs import inference_stub
from tests.unit.gateway.grpc.harness import API_KEY, QWEN, Harness

DOC = Path(__file__).resolve().parents[4] / "docs" / "GRPC.md"
CALL = re.compile(r"-d '(?P<body>\{.*?\})'.*?127\.0\.0\.1:50051 (?P<method>[\w.]+/\w+)", re.S)
REQUESTS = {
    "modelyard.v1.Inference/Chat": chat_pb2.ChatRequest,
    "modelyard.v1.Inference/StreamChat": chat_pb2.ChatRequest,
    "modelyard.v1.Inference/StreamComplete": completion_pb2.CompletionRequest,
    "modelyard.v1.Inference/ListModels": models_pb2.ListModelsRequest,
    "grpc.health.v1.Health/Check": health_pb2.HealthCheckRequest,
}


def documented_calls() -> list[tuple[str, str]]:
    return [(m["method"], m["body"]) for m in CALL.finditer(DOC.read_text("utf-8"))]


def test_the_doc_has_the_calls_this_test_knows() -> None:
    assert sorted({method for method, _ in documented_calls()}) == sorted(REQUESTS)


async def test_documented_calls_succeed(harness: Harness) -> None:
    metadata = (("authorization", f"Bearer {API_KEY}"),)
    async with grpc.aio.insecure_channel(harness.server.target) as channel:
        stub = inference_stub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        for method, body in documented_calls():
            request = json_format.Parse(body, REQUESTS[method]())
            name = method.rsplit("/", 1)[1]
            if method.startswith("grpc.health"):
                response = await health.Check(request, timeout=5)
                assert response.status == health_pb2.HealthCheckResponse.SERVING
                continue
            call = getattr(stub, name)(request, timeout=10, metadata=metadata)
            if name.startswith("Stream"):
                items = [item async for item in call]
                assert items[-1].usage.completion_tokens > 0, method
            else:
                response = await call
                if name == "ListModels":
                    assert QWEN in [m.id for m in response.models]
                else:
                    assert response.choices[0].message.tool_calls[0].function.name == "get_weather"
