"""The HTTP app in-process (httpx + ASGITransport, no sockets) over real simulator engines.

Assertions are on structure, counts and caching — never on the generated words.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import pytest

from cluster.config import (
    ClusterConfig,
    GatewaySettings,
    ModelDeployment,
    ServedModel,
    load_builtin_catalog,
)
from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import EngineUnavailable, Overloaded
from cluster.gateway.http import build_gateway_app
from cluster.gateway.http.sse import parse_events
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock
from tests.unit.api.validation_cases import CHAT_INVALID, COMPLETION_INVALID
from tests.unit.gateway.service.scripted import ScriptedEngine

QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
DEVSTRAL = "mistralai/devstral-small"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
MISTRAL_ALIAS = "casperhansen-mistral-small-24b-instruct-2501-awq"
MAX_BODY = 64 * 1024
USER = {"role": "user", "content": "Write a haiku about queues."}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def config() -> ClusterConfig:
    return ClusterConfig(
        gateway=GatewaySettings(max_body_bytes=MAX_BODY),
        models=[ModelDeployment(id=m) for m in (QWEN, MINIMAX, DEVSTRAL, MISTRAL)],
    )


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@pytest.fixture(scope="module")
def served() -> list[ServedModel]:
    return config().served_models(load_builtin_catalog())


@pytest.fixture
async def sim(
    served: list[ServedModel],
) -> AsyncIterator[tuple[httpx.AsyncClient, EngineBackend, dict[str, SimEngine]]]:
    cfg = config()
    engines = {m.id: SimEngine(m, replica_id=f"{m.id}#0", clock=VirtualClock()) for m in served}
    backend = EngineBackend(engines)
    await backend.start()
    async with client_for(build_gateway_app(cfg, served, backend)) as client:
        yield client, backend, engines
    await backend.shutdown()


@pytest.fixture
def client(sim: tuple[httpx.AsyncClient, EngineBackend, dict[str, SimEngine]]) -> httpx.AsyncClient:
    return sim[0]


def assert_error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    assert error["message"]
    return dict(error)


def sse(response: httpx.Response) -> list[Any]:
    """Decoded events; the literal [DONE] stays a string."""
    return [e if e == "[DONE]" else json.loads(e) for e in parse_events(response.content)]


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
async def test_chat_completion(client: httpx.AsyncClient, prefix: str) -> None:
    response = await client.post(
        f"{prefix}/chat/completions", json={"model": QWEN, "messages": [USER]}
    )
    assert response.status_code == 200
    assert response.headers["x-modelyard-engine"] == "sim (simulated)"
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == QWEN
    assert "SIMULATED" in body["system_fingerprint"]
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


async def test_chat_stream_sse_framing(client: httpx.AsyncClient) -> None:
    request = {
        "model": QWEN,
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = await client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-modelyard-engine"] == "sim (simulated)"
    assert response.content.endswith(b"data: [DONE]\n\n")
    events = sse(response)
    assert events[-1] == "[DONE]"
    chunks, usage_chunk = events[:-2], events[-2]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] in ("stop", "length") and finishes.count(None) == len(chunks) - 1
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] > 0


async def test_same_answer_streamed_and_not(client: httpx.AsyncClient) -> None:
    request = {"model": DEVSTRAL, "messages": [USER], "seed": 7}
    whole = (await client.post("/v1/chat/completions", json=request)).json()
    streamed = sse(await client.post("/v1/chat/completions", json={**request, "stream": True}))
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in streamed[:-1])
    assert text == whole["choices"][0]["message"]["content"]


async def test_minimax_reasoning_is_split_and_never_cached(client: httpx.AsyncClient) -> None:
    long_user = {"role": "user", "content": "context " * 400}
    request = {"model": MINIMAX, "messages": [long_user]}
    for _ in range(2):
        body = (await client.post("/v1/chat/completions", json=request)).json()
        message = body["choices"][0]["message"]
        assert message["reasoning_content"]
        assert "<think>" not in message["content"] and "</think>" not in message["content"]
        assert "<think>" not in message["reasoning_content"]
        assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    events = sse(await client.post("/v1/chat/completions", json={**request, "stream": True}))
    deltas = [e["choices"][0]["delta"] for e in events[:-1]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == message["reasoning_content"]
    assert "".join(d.get("content", "") for d in deltas) == message["content"]


async def test_repeated_prefix_reports_cached_tokens(client: httpx.AsyncClient) -> None:
    system = {"role": "system", "content": "You are a careful reviewer. " * 60}
    first = await client.post(
        "/v1/chat/completions", json={"model": QWEN, "messages": [system, USER]}
    )
    second = await client.post(
        "/v1/chat/completions",
        json={
            "model": QWEN,
            "messages": [system, {"role": "user", "content": "Another question."}],
        },
    )
    assert first.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = second.json()["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0 and cached % 16 == 0
    assert cached < second.json()["usage"]["prompt_tokens"]


async def test_named_tool_choice_returns_a_tool_call(client: httpx.AsyncClient) -> None:
    request = {
        "model": MISTRAL,
        "messages": [USER],
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    body = (await client.post("/v1/chat/completions", json=request)).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_weather"
    assert "city" in json.loads(call["function"]["arguments"])
    events = sse(await client.post("/v1/chat/completions", json={**request, "stream": True}))
    calls = [tc for e in events[:-1] for tc in e["choices"][0]["delta"].get("tool_calls", [])]
    assert calls[0]["id"].startswith("call_") and calls[0]["function"]["name"] == "get_weather"
    assert all("id" not in tc for tc in calls[1:])
    assert "city" in json.loads("".join(tc["function"].get("arguments", "") for tc in calls))
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_n_choices(client: httpx.AsyncClient) -> None:
    body = (
        await client.post("/v1/chat/completions", json={"model": QWEN, "messages": [USER], "n": 3})
    ).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    single = (
        await client.post("/v1/chat/completions", json={"model": QWEN, "messages": [USER]})
    ).json()
    assert body["usage"]["prompt_tokens"] == single["usage"]["prompt_tokens"]


async def test_alias_and_adapter_names(client: httpx.AsyncClient) -> None:
    by_alias = await client.post(
        "/v1/chat/completions", json={"model": MISTRAL_ALIAS, "messages": [USER]}
    )
    assert by_alias.status_code == 200 and by_alias.json()["model"] == MISTRAL
    adapter = await client.post(
        "/v1/chat/completions", json={"model": f"{MISTRAL}:sql", "messages": [USER]}
    )
    assert adapter.status_code == 200 and adapter.json()["model"] == f"{MISTRAL}:sql"
    no_lora = await client.post(
        "/v1/chat/completions", json={"model": f"{QWEN}:sql", "messages": [USER]}
    )
    assert_error(no_lora, 404, "model_not_found", "model")


async def test_completions(client: httpx.AsyncClient) -> None:
    body = (
        await client.post(
            "/v1/completions", json={"model": DEVSTRAL, "prompt": ["a b", "c d"], "max_tokens": 5}
        )
    ).json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert all(c["finish_reason"] == "length" for c in body["choices"])
    assert body["usage"]["completion_tokens"] == 10
    events = sse(
        await client.post(
            "/api/v1/completions", json={"model": DEVSTRAL, "prompt": "x", "stream": True}
        )
    )
    assert events[-1] == "[DONE]"
    assert all(e["object"] == "text_completion" for e in events[:-1])


async def test_models(client: httpx.AsyncClient) -> None:
    listing = (await client.get("/v1/models")).json()
    assert listing["object"] == "list"
    assert {m["id"] for m in listing["data"]} == {QWEN, MINIMAX, DEVSTRAL, MISTRAL}
    assert all(m["simulated"] is True and m["object"] == "model" for m in listing["data"])
    one = await client.get(f"/api/v1/models/{QWEN}")
    assert one.status_code == 200 and one.json()["id"] == QWEN and one.json()["owned_by"] == "qwen"
    assert (await client.get(f"/v1/models/{MISTRAL_ALIAS}")).json()["id"] == MISTRAL
    assert_error(await client.get("/v1/models/acme/unknown"), 404, "model_not_found", "model")


async def test_health_and_metrics(
    sim: tuple[httpx.AsyncClient, EngineBackend, dict[str, SimEngine]],
) -> None:
    client, _backend, engines = sim
    health = await client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "status": "ok",
        "models": dict.fromkeys((QWEN, MINIMAX, DEVSTRAL, MISTRAL), True),
    }
    await client.post("/v1/chat/completions", json={"model": QWEN, "messages": [USER]})
    await client.post("/v1/chat/completions", json={"model": "nope", "messages": [USER]})
    text = (await client.get("/metrics")).text
    assert f'modelyard_requests_total{{endpoint="chat",model="{QWEN}",status="200"}} 1.0' in text
    assert 'modelyard_errors_total{code="model_not_found",model="unknown"} 1.0' in text
    assert f'modelyard_time_to_first_token_seconds_count{{model="{QWEN}"}} 1.0' in text
    await engines[MINIMAX].shutdown()
    down = await client.get("/health")
    assert down.status_code == 503
    assert down.json()["models"][MINIMAX] is False and down.json()["models"][QWEN] is True


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/nothing-here"), 404, "unknown_url")
    wrong = await client.get("/v1/chat/completions")
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "body", [b"{", b'{"model": NaN}', b"", b"\xff"], ids=["truncated", "nan", "empty", "binary"]
)
async def test_malformed_json(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "param"), [c[1:] for c in CHAT_INVALID], ids=[c[0] for c in CHAT_INVALID]
)
async def test_chat_validation_over_http(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    error = assert_error(await client.post("/v1/chat/completions", json=body), 400, None, param)
    assert error["type"] == "invalid_request_error"
    assert param in error["message"]


@pytest.mark.parametrize(
    ("body", "param"), [c[1:] for c in COMPLETION_INVALID], ids=[c[0] for c in COMPLETION_INVALID]
)
async def test_completion_validation_over_http(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    error = assert_error(await client.post("/v1/completions", json=body), 400, None, param)
    assert param in error["message"]


async def test_unknown_model_404(client: httpx.AsyncClient) -> None:
    error = assert_error(
        await client.post(
            "/v1/chat/completions", json={"model": "acme/private", "messages": [USER]}
        ),
        404,
        "model_not_found",
        "model",
    )
    assert "acme/private" in error["message"] and QWEN not in error["message"]


@pytest.mark.parametrize("stream", [False, True])
async def test_context_length_exceeded(client: httpx.AsyncClient, stream: bool) -> None:
    # max_tokens alone beyond the window: refused by the core before the engine
    too_many = {"model": MISTRAL, "messages": [USER], "max_tokens": 40_000, "stream": stream}
    assert_error(
        await client.post("/v1/chat/completions", json=too_many),
        400,
        "context_length_exceeded",
        "max_tokens",
    )
    # prompt + max_tokens beyond the window: refused by the engine before its first chunk,
    # so even a streaming request gets a plain 400, not an SSE stream
    tight = {"model": MISTRAL, "messages": [USER], "max_tokens": 32_760, "stream": stream}
    assert_error(
        await client.post("/v1/chat/completions", json=tight),
        400,
        "context_length_exceeded",
        "messages",
    )


async def test_body_too_large(client: httpx.AsyncClient) -> None:
    big = {"model": QWEN, "messages": [{"role": "user", "content": "x" * MAX_BODY}]}
    assert_error(await client.post("/v1/chat/completions", json=big), 413, "payload_too_large")

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    response = await client.post("/v1/chat/completions", content=chunked())
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_bad_content_length(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions", content=b"{}", headers={"content-length": "abc"}
    )
    assert response.status_code == 400


class BrokenBackend:
    """Raises a bug (with a secret in it) for one model; serves another by script."""

    def __init__(self) -> None:
        self.engine = ScriptedEngine(
            lambda _r: [EngineChunk(text="a"), EngineUnavailable("replica died")]
        )

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncGenerator[EngineChunk, None]:
        if model.id == DEVSTRAL:
            raise RuntimeError("database password=hunter2")
        async for chunk in self.engine.generate(request):
            yield chunk

    async def health(self) -> dict[str, bool]:
        raise RuntimeError("probe exploded")


async def test_unexpected_errors_are_generic_500_and_serving_continues(
    served: list[ServedModel],
) -> None:
    app = build_gateway_app(config(), served, BrokenBackend())
    async with client_for(app) as client:
        for _ in range(2):
            response = await client.post(
                "/v1/chat/completions", json={"model": DEVSTRAL, "messages": [USER]}
            )
            error = assert_error(response, 500, None)
            assert "hunter2" not in response.text and error["type"] == "internal_error"
        assert (await client.get("/health")).status_code == 503
        assert (await client.get("/v1/models")).status_code == 200


async def test_error_after_stream_start_is_an_event_then_done(served: list[ServedModel]) -> None:
    app = build_gateway_app(config(), served, BrokenBackend())
    async with client_for(app) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": QWEN, "messages": [USER], "stream": True}
        )
    assert response.status_code == 200
    events = sse(response)
    assert events[0]["choices"][0]["delta"]["content"] == "a"
    assert events[1] == {
        "error": {
            "message": "replica died",
            "type": "service_unavailable",
            "param": None,
            "code": "engine_unavailable",
        }
    }
    assert events[2] == "[DONE]" and len(events) == 3


class OverloadedBackend:
    """Every model is at capacity, as `HandleBackend` reports Serve's BackPressureError."""

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncGenerator[EngineChunk, None]:
        raise Overloaded(f"model {model.id!r} is at capacity", retry_after_s=7)
        yield EngineChunk()  # pragma: no cover - makes this an async generator

    async def health(self) -> dict[str, bool]:
        return {}


@pytest.mark.parametrize("stream", [False, True])
async def test_overloaded_is_503_with_retry_after(served: list[ServedModel], stream: bool) -> None:
    app = build_gateway_app(config(), served, OverloadedBackend())
    async with client_for(app) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": QWEN, "messages": [USER], "stream": stream}
        )
    error = assert_error(response, 503, "overloaded")
    assert error["type"] == "service_unavailable"
    assert response.headers["retry-after"] == "7"
