"""VLLMEngine beyond the shared contract: adapters, engine-judged errors, completions,
structured output, metrics and KV events. Structure and counts only, never generated text.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from cluster.api.messages import (
    FunctionDefinition,
    JsonSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    SystemMessage,
    Tool,
    UserMessage,
)
from cluster.config.settings import ServedModel
from cluster.engine import EngineChunk, EngineRequest, KVEventBatch
from cluster.errors import (
    ConfigError,
    ContextLengthExceeded,
    EngineUnavailable,
    InvalidRequest,
    ModelNotFound,
)
from deployments.engines.vllm import VLLMEngine
from tests.contract.engine_contract import shared_prefix
from tests.vllm import tiny
from tests.vllm.conftest import ADAPTER, MODEL_ID

pytestmark = [pytest.mark.vllm, pytest.mark.asyncio(loop_scope="session")]

TIMEOUT_S = 60.0


def chat(text: str, *, system: str | None = None, **fields: Any) -> EngineRequest:
    messages: list[Any] = [SystemMessage(role="system", content=system)] if system else []
    messages.append(UserMessage(role="user", content=text))
    return EngineRequest(
        request_id="t-" + uuid.uuid4().hex, model=MODEL_ID, messages=messages, **fields
    )


async def collect(engine: VLLMEngine, request: EngineRequest) -> list[EngineChunk]:
    async with asyncio.timeout(TIMEOUT_S):
        return [chunk async for chunk in engine.generate(request)]


async def first_error(engine: VLLMEngine, request: EngineRequest) -> Exception:
    stream = engine.generate(request)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            chunk = await anext(stream)
    except Exception as err:
        return err
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    pytest.fail(f"expected an error before any chunk, got {chunk!r}")


async def test_unknown_adapter_is_model_not_found(tiny_engine: VLLMEngine) -> None:
    err = await first_error(tiny_engine, chat("Hi.", adapter="no-such-adapter", max_tokens=4))
    assert isinstance(err, ModelNotFound)
    assert "no-such-adapter" in err.message and ADAPTER in err.message


async def test_adapter_is_loaded_on_first_use_and_keys_the_cache(
    tiny_engine: VLLMEngine,
) -> None:
    prefix = shared_prefix(400)
    base = [await collect(tiny_engine, chat(q, system=prefix, max_tokens=2)) for q in "ab"]
    assert base[1][-1].usage is not None and base[1][-1].usage.cached_tokens > 0
    lora = [
        await collect(tiny_engine, chat(q, system=prefix, max_tokens=2, adapter=ADAPTER))
        for q in "ab"
    ]
    assert ADAPTER in tiny_engine.adapters.loaded
    first, second = (chunks[-1].usage for chunks in lora)
    assert first is not None and second is not None
    assert first.cached_tokens == 0, "the base model's blocks are not the adapter's"
    assert second.cached_tokens > 0


async def test_concurrent_first_uses_of_an_adapter_all_succeed(
    tiny_engine: VLLMEngine,
) -> None:
    requests = [chat(f"n{i}", max_tokens=3, adapter=ADAPTER) for i in range(4)]
    results = await asyncio.gather(*(collect(tiny_engine, r) for r in requests))
    assert all(chunks[-1].finish_reason == "length" for chunks in results)


@pytest.mark.parametrize("kind", ["chat", "completion"])
async def test_prompt_too_long_for_the_tokenizer(tiny_engine: VLLMEngine, kind: str) -> None:
    text = " ".join(["a"] * (tiny.MAX_LEN + 8))
    if kind == "chat":
        request = chat(text)
    else:
        request = EngineRequest(request_id="c-" + uuid.uuid4().hex, model=MODEL_ID, prompt=text)
    err = await first_error(tiny_engine, request)
    assert isinstance(err, ContextLengthExceeded)
    assert err.param == ("messages" if kind == "chat" else "prompt")
    assert str(tiny.MAX_LEN) in err.message
    assert tiny_engine.stats().running == 0


async def test_a_named_tool_that_was_not_passed_is_a_400(tiny_engine: VLLMEngine) -> None:
    choice = NamedToolChoice(type="function", function=NamedFunction(name="not_there"))
    tool = Tool(type="function", function=FunctionDefinition(name="other", parameters={}))
    err = await first_error(tiny_engine, chat("x", tools=[tool], tool_choice=choice))
    assert isinstance(err, InvalidRequest) and not isinstance(err, ContextLengthExceeded)


async def test_completion_streams_with_usage(tiny_engine: VLLMEngine) -> None:
    request = EngineRequest(
        request_id="c-" + uuid.uuid4().hex, model=MODEL_ID, prompt="hello there", max_tokens=6
    )
    chunks = await collect(tiny_engine, request)
    final = chunks[-1]
    assert final.finish_reason == "length" and final.usage is not None
    assert final.usage.completion_tokens == 6 and final.usage.prompt_tokens > 0
    assert chunks[0].replica_id == tiny_engine.replica_id
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])


async def test_response_format_json_schema_is_enforced(tiny_engine: VLLMEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "ok": {"type": "boolean"}},
        "required": ["city", "ok"],
    }
    fmt = ResponseFormat(
        type="json_schema",
        json_schema=JsonSchemaFormat.model_validate({"name": "answer", "schema": schema}),
    )
    chunks = await collect(tiny_engine, chat("Answer in JSON.", response_format=fmt))
    assert chunks[-1].finish_reason == "stop"
    answer = json.loads("".join(c.text for c in chunks))
    assert isinstance(answer, dict) and {"city", "ok"} <= answer.keys()
    assert isinstance(answer["ok"], bool)


async def test_kv_events_name_the_adapter(tiny_engine: VLLMEngine) -> None:
    events = tiny_engine.kv_events()
    batches: list[KVEventBatch] = []

    async def consume() -> None:
        async for batch in events:
            batches.append(batch)
            if any(e.lora_name == ADAPTER for e in batch.events):
                return

    task = asyncio.create_task(consume())
    try:
        await collect(tiny_engine, chat("Hi.", system=shared_prefix(300), adapter=ADAPTER))
        async with asyncio.timeout(TIMEOUT_S):
            await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await events.aclose()  # type: ignore[attr-defined]
    stored = [e for b in batches for e in b.events if e.lora_name == ADAPTER]
    assert stored and all(e.block_size == tiny_engine.stats().block_size for e in stored)


async def test_metrics_text_has_vllm_engine_metrics(tiny_engine: VLLMEngine) -> None:
    prefix = shared_prefix(300)
    for question in ("one", "two"):
        await collect(tiny_engine, chat(question, system=prefix, max_tokens=2))
    text = tiny_engine.metrics_text()
    samples = {
        line.split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:") and f'replica="{tiny_engine.replica_id}"' in line
    }
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_count",
    ):
        assert name in samples, name
    assert samples["vllm:prefix_cache_hits_total"] > 0
    assert all(not line.startswith("python_") for line in text.splitlines())


async def test_stats_report_vllms_cache_geometry(tiny_engine: VLLMEngine) -> None:
    stats = tiny_engine.stats()
    assert stats.block_size == 128  # vLLM CPU's block size
    assert stats.kv_blocks_total > 0
    assert tiny_engine.config is not None
    assert tiny_engine.config.engine.enable_prefix_caching is True
    assert tiny_engine.config.engine.kv_events_config is not None


async def test_an_unknown_tool_parser_fails_start_before_vllm_starts(
    tiny_model: ServedModel,
) -> None:
    spec = tiny_model.spec.model_copy(update={"tool_parser": "minimax"})
    engine = VLLMEngine(tiny_model.model_copy(update={"spec": spec}), replica_id="bad-parser")
    with pytest.raises(ConfigError, match=r"catalog\[test/tiny-llama\]\.tool_parser: 'minimax'"):
        await engine.start()
    assert engine._subscriber is None  # the KV-event socket was closed again
    with pytest.raises(EngineUnavailable):
        await engine.check_health()


async def test_missing_weights_fail_start_with_engine_unavailable(
    tiny_model: ServedModel, tmp_path: Path
) -> None:
    settings = tiny_model.deployment.vllm
    assert settings is not None
    missing = settings.model_copy(update={"model_path": str(tmp_path / "no-such-model")})
    model = tiny_model.model_copy(
        update={"deployment": tiny_model.deployment.model_copy(update={"vllm": missing})}
    )
    engine = VLLMEngine(model, replica_id="no-weights")
    with pytest.raises(EngineUnavailable, match="could not start"):
        await engine.start()
    assert engine._subscriber is None
