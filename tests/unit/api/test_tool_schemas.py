"""Tool definitions are checked the same way by both front doors (one table).

Each row: a request's `tools` (and `tool_choice`), and the `param` of the 400 / gRPC
INVALID_ARGUMENT it must get — or None: accepted and answered. The HTTP half runs the
gateway app in-process over started simulator engines; the gRPC half the real gRPC server
over the same core (`tests.unit.gateway.grpc.harness`). Tool parameters are checked against the
JSON Schema meta-schema (`cluster.api.tool_schemas`), so a value that is not a schema never
reaches an engine (it used to be a 500).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest

from cluster.config import ClusterConfig, ModelDeployment, load_builtin_catalog
from cluster.errors import InvalidRequest
from cluster.gateway.grpc.client import ChatRequest, ToolChoice, function_tool, grpc_code, user
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock
from tests.unit.gateway.grpc.harness import QWEN, Harness, start_harness, stop_harness

USER = {"role": "user", "content": "What is the weather in Paris?"}
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def tool(name: str = "get_weather", parameters: Any = CITY) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def named(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


#: (id, tools, tool_choice or None, expected param of the 400 or None for success)
CASES: list[tuple[str, list[dict[str, Any]], Any, str | None]] = [
    ("valid", [tool()], None, None),
    ("valid-no-parameters", [tool(parameters=None)], None, None),
    ("valid-named-choice", [tool(), tool("other")], named("other"), None),
    (
        "properties-negative",
        [tool(parameters={"type": "object", "properties": -1})],
        None,
        "tools[0].function.parameters.properties",
    ),
    (
        "properties-string",
        [tool(parameters={"type": "object", "properties": "x"})],
        None,
        "tools[0].function.parameters.properties",
    ),
    (
        "properties-list",
        [tool(parameters={"type": "object", "properties": ["a", "b"]})],
        None,
        "tools[0].function.parameters.properties",
    ),
    (
        "second-tool-bad-type",
        [tool(), tool("other", {"type": "object", "properties": {"a": {"type": "strin"}}})],
        None,
        "tools[1].function.parameters.properties.a.type",
    ),
    (
        "required-not-list",
        [tool(parameters={"type": "object", "required": "city"})],
        None,
        "tools[0].function.parameters.required",
    ),
    (
        "min-items-negative",
        [tool(parameters={"type": "array", "minItems": -1})],
        None,
        "tools[0].function.parameters.minItems",
    ),
    (
        "dollar-schema-not-a-string",
        [tool(parameters={"$schema": ["x"], "type": "object"})],
        None,
        "tools[0].function.parameters.$schema",
    ),
    (
        "draft-07-nested-definition",
        [
            tool(
                parameters={
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "definitions": {"a": {"type": "strin"}},
                }
            )
        ],
        None,
        "tools[0].function.parameters.definitions.a.type",
    ),
    ("name-with-space", [tool("get weather")], None, "tools[0].function.name"),
    ("name-too-long", [tool("f" * 65)], None, "tools[0].function.name"),
    ("name-dot", [tool("a.b")], None, "tools[0].function.name"),
    ("name-longest", [tool("f" * 64)], None, None),
    ("choice-unknown-function", [tool()], named("missing"), "tool_choice"),
]


def body(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"model": QWEN, "messages": [USER], "tools": tools, "max_tokens": 8}
    if choice is not None:
        out["tool_choice"] = choice
    return out


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    config = ClusterConfig(models=[ModelDeployment(id=QWEN)])
    served = config.served_models(load_builtin_catalog())
    engines = {m.id: SimEngine(m, replica_id=f"{m.id}#0", clock=VirtualClock()) for m in served}
    backend = EngineBackend(engines)
    await backend.start()
    app = build_gateway_app(config, served, backend)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client
    await backend.shutdown()


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
@pytest.mark.parametrize(
    ("tools", "choice", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_tool_definitions_over_http(
    http: httpx.AsyncClient, prefix: str, tools: Any, choice: Any, param: str | None
) -> None:
    response = await http.post(f"{prefix}/chat/completions", json=body(tools, choice))
    if param is None:
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["finish_reason"] in ("stop", "length", "tool_calls")
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param in error["message"] or param == "tool_choice"


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h, engines = await start_harness()
    yield h
    await stop_harness(h, engines)


def grpc_request(tools: list[dict[str, Any]], choice: Any) -> ChatRequest:
    request = ChatRequest(model=QWEN, messages=[user(USER["content"])], max_tokens=8)
    for item in tools:
        function = item["function"]
        request.tools.append(function_tool(function["name"], function.get("parameters")))
    if choice is not None:
        request.tool_choice.CopyFrom(ToolChoice(function_name=choice["function"]["name"]))
    return request


@pytest.mark.parametrize(
    ("tools", "choice", "param"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_tool_definitions_over_grpc(
    harness: Harness, tools: Any, choice: Any, param: str | None
) -> None:
    request = grpc_request(tools, choice)
    if param is None:
        answer = await harness.client.chat_unary(request, deadline_s=30)
        assert len(answer.choices) == 1
        return
    with pytest.raises(InvalidRequest) as info:
        await harness.client.chat_unary(request, deadline_s=30)
    assert grpc_code(info.value) == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.param == param
