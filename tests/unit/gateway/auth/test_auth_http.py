"""API keys on the HTTP front door: 401 with OpenAI's error object; probes stay open."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from cluster.config import (
    AuthSettings,
    ClusterConfig,
    ModelDeployment,
    load_builtin_catalog,
)
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
KEY = "sk-http-unit-test-key"
CHAT = {"model": QWEN, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture
async def transport() -> AsyncIterator[httpx.ASGITransport]:
    config = ClusterConfig(
        models=[ModelDeployment(id=QWEN)],
        auth=AuthSettings(api_key_sha256=[hashlib.sha256(KEY.encode()).hexdigest()]),
    )
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend({QWEN: SimEngine(served[0], replica_id="auth-0", clock=VirtualClock())})
    await backend.start()
    yield httpx.ASGITransport(app=build_gateway_app(config, served, backend))
    await backend.shutdown()


ROUTES = [
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/api/v1/chat/completions", {**CHAT, "stream": True}),
    ("POST", "/v1/completions", {"model": QWEN, "prompt": "hi", "max_tokens": 2}),
    ("GET", "/v1/models", None),
    ("GET", f"/v1/models/{QWEN}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "invalid_api_key"),
        ({"authorization": "Bearer sk-wrong"}, "invalid_api_key"),
        ({"authorization": KEY}, "invalid_authorization_header"),
        ({"x-api-key": KEY}, "invalid_api_key"),
    ],
    ids=["missing", "wrong", "no-scheme", "other-header"],
)
async def test_api_routes_refuse_without_the_right_key(
    transport: httpx.ASGITransport,
    method: str,
    path: str,
    body: dict[str, object] | None,
    headers: dict[str, str],
    code: str,
) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": "authentication_error",
            "param": None,
            "code": code,
        }
    }
    assert KEY not in response.text and "sk-wrong" not in response.text


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_api_routes_serve_the_right_key(
    transport: httpx.ASGITransport, method: str, path: str, body: dict[str, object] | None
) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert response.status_code == 200, response.text


async def test_auth_is_checked_before_the_body(transport: httpx.ASGITransport) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 401


@pytest.mark.parametrize("path", ["/health", "/metrics"])
async def test_probes_need_no_key(transport: httpx.ASGITransport, path: str) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        assert (await client.get(path)).status_code == 200


async def test_openai_sdk_sends_the_key_as_bearer(transport: httpx.ASGITransport) -> None:
    async with httpx.AsyncClient(transport=transport, base_url="http://gw/v1") as http:
        good = openai.AsyncOpenAI(
            api_key=KEY, base_url="http://gw/v1", http_client=http, max_retries=0
        )
        assert [m.id for m in (await good.models.list()).data] == [QWEN]
        bad = openai.AsyncOpenAI(
            api_key="sk-wrong", base_url="http://gw/v1", http_client=http, max_retries=0
        )
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.chat.completions.create(
                model=QWEN, messages=[{"role": "user", "content": "x"}]
            )
        assert info.value.status_code == 401
        assert info.value.code == "invalid_api_key"
