"""Choices and prompt batches over HTTP, in-process, on real simulator engines.

n > 1 and lists of prompts (text or token ids) are answered with choices indexed
prompt-major then n, each with its own finish_reason; usage counts every prompt once and
every choice's completion; the request-size limits are configuration and answer 400s that
name the field; what the simulator cannot honour (logprobs, logit_bias) is a 400 naming
the field. Every test is bounded by a short timeout: a hang fails in seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cluster.config import ClusterConfig, GatewaySettings, ModelDeployment, load_builtin_catalog
from cluster.gateway.http import build_gateway_app
from cluster.gateway.http.sse import parse_events
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
USER = {"role": "user", "content": "Name three rivers."}
pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    config = ClusterConfig(
        gateway=GatewaySettings(max_choices=4, max_prompts=3, max_generations=6),
        models=[ModelDeployment(id=QWEN)],
    )
    served = config.served_models(load_builtin_catalog())
    engines = {m.id: SimEngine(m, replica_id="b-0", clock=VirtualClock()) for m in served}
    backend = EngineBackend(engines)
    await backend.start()
    app = build_gateway_app(config, served, backend)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http
    await backend.shutdown()


def events(response: httpx.Response) -> list[Any]:
    return [e if e == "[DONE]" else json.loads(e) for e in parse_events(response.content)]


@pytest.mark.parametrize(
    ("prompt", "prompts"),
    [
        ("one", 1),
        (["one", "two", "three"], 3),
        ([5, 6, 7, 8], 1),
        ([[5, 6, 7], [9, 10]], 2),
    ],
    ids=["text", "three-texts", "token-ids", "token-id-lists"],
)
@pytest.mark.parametrize("n", [1, 2])
async def test_completions_index_prompt_major_and_count_every_prompt(
    client: httpx.AsyncClient, prompt: Any, prompts: int, n: int
) -> None:
    body = {"model": QWEN, "prompt": prompt, "n": n, "max_tokens": 4}
    response = await client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [c["index"] for c in data["choices"]] == list(range(prompts * n))
    assert all(c["finish_reason"] == "length" for c in data["choices"])
    usage = data["usage"]
    assert usage["completion_tokens"] == 4 * prompts * n
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
        assert usage["prompt_tokens"] == len(prompt)  # token ids are taken as they are
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], list):
        assert usage["prompt_tokens"] == sum(len(p) for p in prompt)

    streamed = await client.post("/v1/completions", json={**body, "stream": True})
    chunks = [e for e in events(streamed) if e != "[DONE]"]
    finished = sorted(c["index"] for e in chunks for c in e["choices"] if c["finish_reason"])
    assert finished == list(range(prompts * n))


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_n_choices_each_finish(client: httpx.AsyncClient, stream: bool) -> None:
    body = {"model": QWEN, "messages": [USER], "n": 3, "max_tokens": 5, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        data = response.json()
        assert [c["index"] for c in data["choices"]] == [0, 1, 2]
        assert data["usage"]["completion_tokens"] == 15
        return
    chunks = [e for e in events(response) if e != "[DONE]"]
    roles = sorted(c["index"] for e in chunks for c in e["choices"] if c["delta"].get("role"))
    assert roles == [0, 1, 2]
    finished = sorted(c["index"] for e in chunks for c in e["choices"] if c["finish_reason"])
    assert finished == [0, 1, 2]
    assert chunks[-1]["usage"]["completion_tokens"] == 15


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"messages": [USER], "n": 5}, "n"),
        ("/v1/completions", {"prompt": "x", "n": 5}, "n"),
        ("/v1/completions", {"prompt": ["a", "b", "c", "d"]}, "prompt"),
        ("/v1/completions", {"prompt": [[1], [2], [3], [4]]}, "prompt"),
        ("/v1/completions", {"prompt": ["a", "b", "c"], "n": 3}, "n"),  # 9 generations > 6
        ("/v1/chat/completions", {"messages": [USER], "logprobs": True}, "logprobs"),
        ("/v1/completions", {"prompt": "x", "logprobs": 1}, "logprobs"),
        ("/v1/completions", {"prompt": "x", "logit_bias": {"7": 5}}, "logit_bias"),
        ("/v1/chat/completions", {"messages": [USER], "logit_bias": {"7": 5}}, "logit_bias"),
    ],
    ids=[
        "chat-n",
        "completion-n",
        "prompts",
        "token-prompts",
        "generations",
        "sim-chat-logprobs",
        "sim-completion-logprobs",
        "sim-completion-logit-bias",
        "sim-chat-logit-bias",
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_refusals_name_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], param: str, stream: bool
) -> None:
    response = await client.post(path, json={"model": QWEN, "stream": stream, **body})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    ok = await client.post("/v1/completions", json={"model": QWEN, "prompt": "x", "max_tokens": 2})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("fmt", "keys"),
    [
        ({"type": "json_object"}, {"answer"}),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "pop": {"type": "integer"}},
                        "required": ["city", "pop"],
                    },
                },
            },
            {"city", "pop"},
        ),
    ],
    ids=["json-object", "json-schema"],
)
async def test_simulator_honours_response_format(
    client: httpx.AsyncClient, fmt: dict[str, Any], keys: set[str]
) -> None:
    body = {"model": QWEN, "messages": [USER], "response_format": fmt, "max_tokens": 400, "n": 2}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    for choice in response.json()["choices"]:
        assert set(json.loads(choice["message"]["content"])) == keys
