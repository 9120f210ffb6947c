"""The gRPC API end to end through the real Ray Serve app: the generated client → the gRPC
server in the gateway replica → the same core as HTTP → model replicas (simulator).

Auth failures and every status code are covered in-process (tests/unit/gateway/grpc); the shared
live cluster runs in local mode (no API keys), which these tests also check.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cluster.errors import DeadlineExceeded, InvalidRequest, ModelNotFound
from cluster.gateway.grpc.client import (
    ChatRequest,
    CompletionRequest,
    ModelyardClient,
    function_tool,
    grpc_code,
    named_tool_choice,
    user,
)
from cluster.gateway.grpc.gen.modelyard.v1 import common_pb2
from cluster.gateway.grpc.server import INFERENCE_SERVICE
from tests.integration.live import DEVSTRAL, HTTP_TIMEOUT_S, MODEL_IDS, QWEN

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def prompt(words: int = 300) -> str:
    return uuid.uuid4().hex + " " + " ".join(f"w{i}" for i in range(words))


async def test_models_listed_over_grpc(grpc_target: str) -> None:
    async with ModelyardClient(grpc_target) as client:  # local mode: no key needed
        models = await client.list_models(deadline_s=DEADLINE_S)
        assert [m.id for m in models] == MODEL_IDS
        assert all(m.simulated for m in models)
        assert (await client.get_model(QWEN, deadline_s=DEADLINE_S)).id == QWEN
        with pytest.raises(ModelNotFound):
            await client.get_model("acme/nope", deadline_s=DEADLINE_S)


async def test_stream_reports_usage_and_cached_prefix(grpc_target: str) -> None:
    request = ChatRequest(model=QWEN, messages=[user(prompt())], max_tokens=8)
    usages = []
    async with ModelyardClient(grpc_target) as client:
        for _ in range(2):
            chunks = [c async for c in client.chat(request, deadline_s=DEADLINE_S)]
            assert chunks[-1].HasField("usage") and not chunks[-1].choices
            streamed = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
            assert chunks[-1].usage.completion_tokens == streamed == 8
            usages.append(chunks[-1].usage)
    assert usages[0].cached_tokens == 0
    assert 0 < usages[1].cached_tokens < usages[1].prompt_tokens


async def test_named_tool_choice(grpc_target: str) -> None:
    request = ChatRequest(
        model=DEVSTRAL,
        messages=[user("Weather in Oslo?")],
        tools=[function_tool("get_weather", WEATHER)],
        tool_choice=named_tool_choice("get_weather"),
        max_tokens=200,
    )
    async with ModelyardClient(grpc_target) as client:
        response = await client.chat_unary(request, deadline_s=DEADLINE_S)
    (choice,) = response.choices
    assert choice.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert "city" in json.loads(call.function.arguments)


async def test_grpc_and_http_answer_alike(grpc_target: str, api: str) -> None:
    """One core: the same request counts the same tokens through either door."""
    text = prompt(50)
    async with ModelyardClient(grpc_target) as client:
        over_grpc = await client.complete_unary(
            CompletionRequest(model=QWEN, prompt=[text], max_tokens=5, seed=7),
            deadline_s=DEADLINE_S,
        )
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        reply = await http.post(
            f"{api}/completions",
            json={"model": QWEN, "prompt": text, "max_tokens": 5, "seed": 7},
        )
    over_http = reply.json()
    assert over_grpc.usage.prompt_tokens == over_http["usage"]["prompt_tokens"]
    assert over_grpc.usage.completion_tokens == over_http["usage"]["completion_tokens"] == 5


async def test_invalid_request_names_the_field(grpc_target: str) -> None:
    async with ModelyardClient(grpc_target) as client:
        with pytest.raises(InvalidRequest) as info:
            await client.chat_unary(
                ChatRequest(model=QWEN, messages=[user("x")], top_p=1.5), deadline_s=DEADLINE_S
            )
    assert info.value.param == "top_p"
    assert grpc_code(info.value) == grpc.StatusCode.INVALID_ARGUMENT


async def _cancelled(base_url: str, model: str) -> float:
    """Chat requests of `model` the gateway counted as abandoned by the caller (499)."""
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
        scrape = (await http.get(f"{base_url}/metrics")).text
    pattern = re.compile(
        r'^modelyard_requests_total\{(?=[^}]*model="' + re.escape(model) + r'")'
        r'(?=[^}]*endpoint="chat")(?=[^}]*status="499")[^}]*\} (\S+)$',
        re.M,
    )
    return sum(float(value) for value in pattern.findall(scrape))


async def test_deadline_aborts_the_request_in_the_model_replica(
    grpc_target: str, base_url: str
) -> None:
    """A deadline that passes mid-stream: DEADLINE_EXCEEDED, the gateway counts the request as
    abandoned (not completed), and the model replica is idle and serving afterwards.

    Answers take ~0.1 s here (sim x200), so the deadline is searched for: doubled when it
    passed before the first chunk, halved when the answer beat it.
    """
    from ray import serve

    from deployments.app import APP_NAME

    handle = serve.get_deployment_handle("model-qwen-qwen3-coder-flash", APP_NAME)
    deadline = 0.05
    async with ModelyardClient(grpc_target) as client:
        for _ in range(8):
            before = await _cancelled(base_url, QWEN)
            request = ChatRequest(model=QWEN, messages=[user(prompt(20))], max_tokens=4000)
            received = 0
            try:
                async for _chunk in client.chat(request, deadline_s=deadline):
                    received += 1
            except DeadlineExceeded as err:
                assert grpc_code(err) == grpc.StatusCode.DEADLINE_EXCEEDED
                if received:
                    break
                deadline *= 2
            else:
                deadline /= 2
        else:
            pytest.fail(f"no deadline expired mid-stream (last tried {deadline:.3f}s)")
        for _ in range(100):
            stats = await handle.stats.remote()
            if stats.running == stats.waiting == 0 and await _cancelled(base_url, QWEN) > before:
                break
            await asyncio.sleep(0.05)
        assert stats.running == stats.waiting == 0
        assert await _cancelled(base_url, QWEN) == before + 1
        again = ChatRequest(model=QWEN, messages=[user("again")], max_tokens=2)
        after = [c async for c in client.chat(again, deadline_s=DEADLINE_S)]
        assert after[-1].usage.completion_tokens == 2


async def test_health_per_model_and_reflection(grpc_target: str) -> None:
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", INFERENCE_SERVICE, *MODEL_IDS]:
            response = await health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE_S
            )
            assert response.status == health_pb2.HealthCheckResponse.SERVING, service
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=DEADLINE_S
        )
        (listed,) = [response async for response in call]
    names = {service.name for service in listed.list_services_response.service}
    assert INFERENCE_SERVICE in names and "grpc.health.v1.Health" in names
