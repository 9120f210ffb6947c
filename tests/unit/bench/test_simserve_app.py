"""The `sim serve` app in-process: the OpenAI SDK parses it, /metrics has vLLM's engine
gauges computed from the engine's stats, the worker-info routes routers probe answer, and
bodies re-serialized by SGLang-family routers are accepted (only when they change nothing)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.sim_serve_cmd import sim_prompt_tokens
from bench.simserve import build_sim_serve_app
from bench.simserve.router_compat import rewrite, strip_no_effect_fields
from cluster.config import ClusterConfig, ModelDeployment, SimSettings, load_builtin_catalog
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
PROMPT = " cache" * 160  # 160 tokens under the simulator's tokenizer: ten full blocks


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    deployment = ModelDeployment(id=QWEN, sim=SimSettings(kv_blocks=2048, max_num_seqs=8))
    config = ClusterConfig(models=[deployment])
    (model,) = config.served_models(load_builtin_catalog())
    engine = SimEngine(model, replica_id="sim-0", clock=VirtualClock())
    await engine.start()
    app = build_sim_serve_app(config, model, engine, prompt_tokens=sim_prompt_tokens())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client
    await engine.shutdown()


def sdk(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="unused", base_url="http://sim/v1", http_client=http, max_retries=0
    )


def samples(text: str) -> dict[str, tuple[float, dict[str, str]]]:
    return {
        s.name: (s.value, s.labels)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_openai_sdk_chat_completion_and_stream(http: httpx.AsyncClient) -> None:
    client = sdk(http)
    chat = await client.chat.completions.create(
        model=QWEN, messages=[{"role": "user", "content": PROMPT}], max_tokens=8
    )
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 8
    completion = await client.completions.create(model=QWEN, prompt=PROMPT, max_tokens=8)
    assert completion.usage is not None and completion.usage.prompt_tokens == 160
    stream = await client.completions.create(
        model=QWEN,
        prompt=PROMPT,
        max_tokens=8,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    # The same prompt again: every full block but the one holding the last token is cached.
    assert usage.prompt_tokens_details.cached_tokens == 144
    models = await client.models.list()
    assert [m.id for m in models.data] == [QWEN]
    assert models.data[0].model_extra is not None and models.data[0].model_extra["simulated"]


async def test_metrics_have_vllm_gauges_from_engine_stats(http: httpx.AsyncClient) -> None:
    before = samples((await http.get("/metrics")).text)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
    ):
        value, labels = before[name]
        assert value == 0.0
        assert labels == {"model_name": QWEN, "engine": "0"}
    body = {"model": QWEN, "prompt": PROMPT, "max_tokens": 2}
    for _ in range(2):
        assert (await http.post("/v1/completions", json=body)).status_code == 200
    after = samples((await http.get("/metrics")).text)
    assert after["vllm:prefix_cache_queries_total"][0] == 2 * 160
    assert after["vllm:prefix_cache_hits_total"][0] == 144
    assert after["modelyard_cached_tokens_total"][0] == 144  # the gateway's own series stay


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/get_model_info", "model_path"),
        ("/model_info", "model_path"),
        ("/get_server_info", "max_total_num_tokens"),
        ("/server_info", "max_total_num_tokens"),
        ("/get_load", "load"),
        ("/health_generate", "status"),
    ],
)
async def test_worker_info_routes(http: httpx.AsyncClient, path: str, key: str) -> None:
    response = await http.get(path)
    assert response.status_code == 200
    body = response.json()
    assert key in body
    if "model_path" in body:
        assert body["model_path"] == QWEN and body["simulated"] is True
    if key == "max_total_num_tokens":
        assert body["max_total_num_tokens"] == 2048 * 16 and body["dp_size"] == 1


SGLANG_COMPLETION_EXTRAS = {
    "echo": False,
    "no_stop_trim": False,
    "ignore_eos": False,
    "skip_special_tokens": True,
    "return_hidden_states": False,
}
SGLANG_CHAT_EXTRAS = {
    "logprobs": False,
    "no_stop_trim": False,
    "ignore_eos": False,
    "continue_final_message": False,
    "skip_special_tokens": True,
    "separate_reasoning": True,
    "stream_reasoning": True,
    "return_hidden_states": False,
}


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/completions", {"prompt": "hi", **SGLANG_COMPLETION_EXTRAS}, 200),
        ("/api/v1/completions", {"prompt": "hi", **SGLANG_COMPLETION_EXTRAS}, 200),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "hi"}], **SGLANG_CHAT_EXTRAS},
            200,
        ),
        ("/v1/completions", {"prompt": "hi", "ignore_eos": True}, 400),
        ("/v1/completions", {"prompt": "hi", "echo": 0}, 400),  # not the no-effect value
        ("/v1/completions", {"prompt": "hi", "unknown_key": False}, 400),
    ],
)
async def test_router_extension_fields(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], status: int
) -> None:
    response = await http.post(path, json={"model": QWEN, "max_tokens": 2, **body})
    assert response.status_code == status
    if status == 400:
        assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ({"prompt": "x", "echo": False}, {"prompt": "x"}),
        ({"prompt": "x", "skip_special_tokens": True}, {"prompt": "x"}),
        ({"skip_special_tokens": False}, {"skip_special_tokens": False}),
        ({"prompt": "x", "ignore_eos": True}, {"prompt": "x", "ignore_eos": True}),
        ({"prompt": "x", "logprobs": 0}, {"prompt": "x", "logprobs": 0}),  # an int, not False
        ({"prompt": "x"}, {"prompt": "x"}),
    ],
)
def test_strip_no_effect_fields(body: dict[str, Any], kept: dict[str, Any]) -> None:
    assert strip_no_effect_fields(body) == kept


def test_rewrite_leaves_other_bodies_alone() -> None:
    assert rewrite(b"not json") == b"not json"
    assert rewrite(b"[1, 2]") == b"[1, 2]"
    assert rewrite(b'{"prompt": "x"}') == b'{"prompt": "x"}'


async def test_render_returns_the_engines_token_ids(http: httpx.AsyncClient) -> None:
    body = {"model": QWEN, "prompt": [PROMPT, " one two"], "max_tokens": 3}
    response = await http.post("/v1/completions/render", json=body)
    assert response.status_code == 200
    rendered = response.json()
    assert [len(r["token_ids"]) for r in rendered] == [160, 2]
    assert rendered[0]["sampling_params"] == {"max_tokens": 3}
    chat = {"model": QWEN, "messages": [{"role": "user", "content": PROMPT}]}
    one = (await http.post("/v1/chat/completions/render", json=chat)).json()
    # The same ids the engine counts: render, then ask for the prompt's usage.
    usage = (await http.post("/v1/chat/completions", json={**chat, "max_tokens": 1})).json()
    assert len(one["token_ids"]) == usage["usage"]["prompt_tokens"]
    bad = await http.post("/v1/completions/render", json={"model": QWEN})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
