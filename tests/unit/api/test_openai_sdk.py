"""The official OpenAI SDK against the app (in-process transport): it parses every answer,
iterates streams and raises its typed errors from our error objects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from cluster.config import ClusterConfig, ModelDeployment, load_builtin_catalog
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
USER = {"role": "user", "content": "Summarise the design in one paragraph."}


@pytest.fixture
async def sdk() -> AsyncIterator[openai.AsyncOpenAI]:
    config = ClusterConfig(models=[ModelDeployment(id=m) for m in (QWEN, MINIMAX, MISTRAL)])
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend(
        {m.id: SimEngine(m, replica_id="r0", clock=VirtualClock()) for m in served}
    )
    await backend.start()
    transport = httpx.ASGITransport(app=build_gateway_app(config, served, backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway/v1") as http:
        yield openai.AsyncOpenAI(
            api_key="unused", base_url="http://gateway/v1", http_client=http, max_retries=0
        )
    await backend.shutdown()


async def test_chat(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(model=QWEN, messages=[USER], max_tokens=20)  # type: ignore[list-item]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None and completion.usage.completion_tokens <= 20
    assert completion.usage.prompt_tokens_details is not None


async def test_stream_with_usage(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model=MINIMAX,
        messages=[USER],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks[:-1]
    )
    assert reasoning
    assert chunks[-2].choices[0].finish_reason in ("stop", "length")


async def test_tool_call(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model=MISTRAL,
        messages=[USER],  # type: ignore[list-item]
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {
                        "type": "object",
                        "properties": {"key": {"type": "string"}},
                        "required": ["key"],
                    },
                },
            }
        ],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
    )
    calls = completion.choices[0].message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "lookup"
    assert "key" in json.loads(calls[0].function.arguments)


async def test_completions_and_models(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.completions.create(model=QWEN, prompt="def main():", max_tokens=8)
    assert completion.choices[0].finish_reason == "length"
    models = [m.id async for m in sdk.models.list()]
    assert models == [QWEN, MINIMAX, MISTRAL]
    assert (await sdk.models.retrieve(QWEN)).id == QWEN


@pytest.mark.parametrize(
    ("kwargs", "error", "status"),
    [
        ({"model": "acme/missing"}, openai.NotFoundError, 404),
        ({"model": QWEN, "temperature": 5}, openai.BadRequestError, 400),
        ({"model": QWEN, "max_tokens": 10_000_000}, openai.BadRequestError, 400),
        ({"model": QWEN, "extra_body": {"frobnicate": True}}, openai.BadRequestError, 400),
    ],
)
async def test_errors_map_to_sdk_exceptions(
    sdk: openai.AsyncOpenAI,
    kwargs: dict[str, object],
    error: type[openai.APIStatusError],
    status: int,
) -> None:
    with pytest.raises(error) as caught:
        await sdk.chat.completions.create(messages=[USER], **kwargs)  # type: ignore[call-overload]
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict) and caught.value.body["message"]
