"""The OpenAI SDK against the gateway app over real vLLM (in-process transport, no sockets):
answers, streaming, cached prefix tokens, a named tool call, /metrics with vLLM's engine
metrics, and the same 4xx errors as the simulator path for what only the engine can judge.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
import pytest_asyncio

from cluster.config import ClusterConfig
from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import ServedModel
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.vllm import VLLMEngine
from tests.contract.engine_contract import WEATHER_TOOL, shared_prefix
from tests.vllm import tiny
from tests.vllm.conftest import ADAPTER, MODEL_ID

pytestmark = [pytest.mark.vllm, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(
    tiny_engine: VLLMEngine, tiny_model: ServedModel
) -> AsyncIterator[tuple[openai.AsyncOpenAI, httpx.AsyncClient]]:
    config = ClusterConfig(catalog=[tiny_model.spec], models=[tiny_model.deployment])
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend({MODEL_ID: tiny_engine})  # the session's engine, already started
    transport = httpx.ASGITransport(app=build_gateway_app(config, served, backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        sdk = openai.AsyncOpenAI(
            api_key="unused", base_url="http://gateway/v1", http_client=http, max_retries=0
        )
        yield sdk, http


async def test_chat_answer_and_engine_header(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
) -> None:
    sdk, _ = gateway
    raw = await sdk.chat.completions.with_raw_response.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "Hello!"}], max_tokens=8
    )
    assert raw.headers["x-modelyard-engine"] == "vllm"
    completion = raw.parse()
    assert completion.choices[0].message.role == "assistant"
    assert isinstance(completion.choices[0].message.content, str)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 8


async def test_repeated_long_prefix_reports_cached_tokens(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
) -> None:
    sdk, _ = gateway
    prefix = shared_prefix(400)
    usages = []
    for question in ("First?", "Second?"):
        completion = await sdk.chat.completions.create(
            model=MODEL_ID,
            messages=[
                {"role": "system", "content": prefix},
                {"role": "user", "content": question},
            ],
            max_tokens=4,
        )
        assert completion.usage is not None and completion.usage.prompt_tokens_details
        usages.append(completion.usage)
    assert usages[0].prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    cached = usages[1].prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    assert cached is not None and cached > 0 and cached % 128 == 0


async def test_stream_with_usage(gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient]) -> None:
    sdk, _ = gateway
    stream = await sdk.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Stream, please."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and all(f is None for f in finishes[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12


async def test_named_tool_choice_returns_a_valid_tool_call(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
) -> None:
    sdk, _ = gateway
    completion = await sdk.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL.model_dump(exclude_none=True)],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id
    arguments = json.loads(call.function.arguments)
    assert {"city", "unit"} <= arguments.keys()
    assert arguments["unit"] in ("celsius", "fahrenheit")


async def test_metrics_include_vllm_engine_metrics(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
) -> None:
    sdk, http = gateway
    await sdk.chat.completions.create(
        model=MODEL_ID, messages=[{"role": "user", "content": "count me"}], max_tokens=2
    )
    response = await http.get("/metrics")
    assert response.status_code == 200
    names = {line.split("{")[0].split(" ")[0] for line in response.text.splitlines()}
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
    ):
        assert name in names, name
    assert any(n.startswith("modelyard_") for n in names), "the gateway's own metrics stay"
    helps = [line for line in response.text.splitlines() if line.startswith("# HELP ")]
    assert len(helps) == len(set(helps)), "each family is declared once"


@pytest.mark.parametrize(
    ("model", "content", "status", "code"),
    [
        (MODEL_ID, " ".join(["a"] * (tiny.MAX_LEN + 8)), 400, "context_length_exceeded"),
        (f"{MODEL_ID}:no-such-adapter", "Hi.", 404, "model_not_found"),
    ],
)
async def test_engine_judged_errors_are_clear_4xx(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
    model: str,
    content: str,
    status: int,
    code: str,
) -> None:
    sdk, _ = gateway
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], max_tokens=4
        )
    assert caught.value.status_code == status
    body = caught.value.body
    assert isinstance(body, dict) and body.get("code") == code


async def test_an_adapter_answers_as_model_colon_adapter(
    gateway: tuple[openai.AsyncOpenAI, httpx.AsyncClient],
) -> None:
    sdk, _ = gateway
    completion = await sdk.chat.completions.create(
        model=f"{MODEL_ID}:{ADAPTER}", messages=[{"role": "user", "content": "Hi."}], max_tokens=3
    )
    assert completion.model == f"{MODEL_ID}:{ADAPTER}"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
