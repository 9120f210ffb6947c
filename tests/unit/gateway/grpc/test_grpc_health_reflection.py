"""grpc.health.v1 (whole server, the service, one entry per model) and server reflection."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cluster.gateway.grpc.server import INFERENCE_SERVICE
from tests.unit.gateway.grpc.harness import DEVSTRAL, QWEN, Harness

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def check(harness: Harness, service: str) -> int:
    async with grpc.aio.insecure_channel(harness.server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(response.status)


@pytest.mark.parametrize(
    ("service", "status"),
    [("", SERVING), (INFERENCE_SERVICE, SERVING), (QWEN, SERVING), (DEVSTRAL, NOT_SERVING)],
)
async def test_health_without_an_api_key(harness: Harness, service: str, status: int) -> None:
    assert await check(harness, service) == status


async def test_health_of_an_unknown_service_is_not_found(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(harness, "acme/nope")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_model_health_follows_the_engine(harness: Harness) -> None:
    await harness.engine.shutdown()
    await harness.server.refresh_health()
    assert await check(harness, QWEN) == NOT_SERVING
    assert await check(harness, "") == SERVING


async def test_health_watch_sees_graceful_shutdown(harness: Harness) -> None:
    async with grpc.aio.insecure_channel(harness.server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=INFERENCE_SERVICE), timeout=10)
        seen = [int((await watch.read()).status)]
        stopping = asyncio.create_task(harness.server.stop(grace=0.3))
        seen.append(int((await watch.read()).status))
        await stopping
    assert seen == [SERVING, NOT_SERVING]


async def reflect(
    harness: Harness, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    async with grpc.aio.insecure_channel(harness.server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(iter([request]), timeout=5)
        responses = [response async for response in call]
    assert len(responses) == 1
    return responses[0]


async def test_reflection_lists_the_services(harness: Harness) -> None:
    response = await reflect(harness, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in response.list_services_response.service}
    assert names == {
        "modelyard.v1.Inference",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_reflection_describes_the_api_without_the_proto_files(harness: Harness) -> None:
    """What grpcurl does: fetch descriptors by symbol, then resolve every type from them."""
    response = await reflect(
        harness, reflection_pb2.ServerReflectionRequest(file_containing_symbol=INFERENCE_SERVICE)
    )
    pool = descriptor_pool.DescriptorPool()
    pending = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in response.file_descriptor_response.file_descriptor_proto
    ]
    names = {f.name for f in pending}
    assert {"modelyard/v1/inference.proto", "modelyard/v1/chat.proto"} <= names
    while pending:  # add files after their dependencies
        ready = [
            f
            for f in pending
            if all(d in names - {p.name for p in pending} or _added(pool, d) for d in f.dependency)
        ]
        assert ready, "unresolvable dependencies"
        for f in ready:
            pool.Add(f)
            pending.remove(f)
    service = pool.FindServiceByName(INFERENCE_SERVICE)
    methods = {m.name: m for m in service.methods}
    assert set(methods) == {
        "Chat",
        "StreamChat",
        "Complete",
        "StreamComplete",
        "ListModels",
        "GetModel",
    }
    assert methods["StreamChat"].server_streaming
    assert methods["StreamChat"].output_type.full_name == "modelyard.v1.ChatChunk"
    usage = methods["StreamChat"].output_type.fields_by_name["usage"].message_type
    assert "cached_tokens" in usage.fields_by_name


def _added(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindFileByName(name)
    except KeyError:
        return False
    return True
