"""Stream lifecycle in the core: errors before/after the first chunk, closing, deadlines,
metrics and spans per request, backend health."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from cluster.api.validation import validate_chat
from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import (
    ContextLengthExceeded,
    DeadlineExceeded,
    EngineUnavailable,
    ErrorInfo,
    ModelyardError,
    RateLimited,
)
from cluster.gateway.service import EngineBackend
from tests.unit.gateway.service.scripted import (
    MINIMAX,
    QWEN,
    ScriptedEngine,
    build_rig,
    served_model,
    text_chunks,
)


def chat(**fields: Any):  # type: ignore[no-untyped-def]
    return validate_chat({"model": QWEN, "messages": [{"role": "user", "content": "hi"}], **fields})


async def test_error_before_first_chunk_raises_on_first_anext() -> None:
    too_long = ContextLengthExceeded("prompt too long", param="messages")
    rig = build_rig(lambda _r: [too_long])
    stream = rig.service.stream_chat(chat(stream=True))
    with pytest.raises(ContextLengthExceeded):
        await anext(stream)
    assert rig.requests_total(QWEN, "chat", "400") == 1
    assert (
        rig.metrics.sample(
            "modelyard_errors_total", {"model": QWEN, "code": "context_length_exceeded"}
        )
        == 1
    )


async def test_error_mid_stream_after_chunks() -> None:
    rig = build_rig(lambda _r: [EngineChunk(text="a"), EngineUnavailable("replica died")])
    stream = rig.service.stream_chat(chat(stream=True))
    first = await anext(stream)
    assert first.choices[0].delta.content == "a"
    with pytest.raises(EngineUnavailable):
        await anext(stream)
    assert rig.requests_total(QWEN, "chat", "503") == 1


async def test_unexpected_exception_counts_as_internal_error() -> None:
    rig = build_rig(lambda _r: [RuntimeError("bug with secret sk-123")])
    with pytest.raises(RuntimeError):
        await rig.service.chat(chat())
    assert rig.requests_total(QWEN, "chat", "500") == 1
    (span,) = rig.spans.get_finished_spans()
    assert "sk-123" not in (span.status.description or "")


async def test_closing_the_stream_releases_the_engine_request() -> None:
    gate = asyncio.Event()
    rig = build_rig(lambda _r: text_chunks("a", "b", "c"))
    engine = rig.engine(QWEN)
    engine.gate = gate
    stream = rig.service.stream_chat(chat(stream=True))
    await anext(stream)
    assert len(engine.open_streams) == 1
    await stream.aclose()
    assert engine.open_streams == set()
    assert rig.requests_total(QWEN, "chat", "499") == 1


async def test_closing_a_fanned_out_stream_releases_every_choice() -> None:
    gate = asyncio.Event()
    rig = build_rig(lambda _r: text_chunks("a", "b", "c"))
    engine = rig.engine(QWEN)
    engine.gate = gate
    stream = rig.service.stream_chat(chat(stream=True, n=3))
    await anext(stream)
    assert len(engine.open_streams) == 3
    await stream.aclose()
    assert engine.open_streams == set()
    assert len(engine.closed_streams) == 3


async def test_cancelling_the_consumer_releases_the_engine_request() -> None:
    gate = asyncio.Event()
    rig = build_rig(lambda _r: text_chunks("a", "b"))
    engine = rig.engine(QWEN)
    engine.gate = gate

    async def consume() -> None:
        async for _ in rig.service.stream_chat(chat(stream=True)):
            pass

    task = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await engine.opened.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert engine.open_streams == set()
    assert rig.requests_total(QWEN, "chat", "499") == 1


async def test_one_failing_choice_fails_before_any_chunk_and_closes_the_rest() -> None:
    def script(request: EngineRequest) -> list[Any]:
        if request.request_id.endswith("-1"):
            return [RateLimited("slow down")]
        return text_chunks("a", "b")

    gate = asyncio.Event()
    rig = build_rig(script)
    rig.engine(QWEN).gate = gate
    stream = rig.service.stream_chat(chat(stream=True, n=3))
    with pytest.raises(RateLimited):
        await anext(stream)
    assert rig.engine(QWEN).open_streams == set()


async def test_deadline_exceeded() -> None:
    gate = asyncio.Event()  # never set: the second chunk never comes
    rig = build_rig(lambda _r: text_chunks("a", "b"), timeout_s=0.05)
    rig.engine(QWEN).gate = gate
    with pytest.raises(DeadlineExceeded) as caught:
        await rig.service.chat(chat())
    assert caught.value.http_status == 504
    assert rig.engine(QWEN).open_streams == set()


async def test_deadline_exceeded_with_fan_out() -> None:
    gate = asyncio.Event()
    rig = build_rig(lambda _r: text_chunks("a", "b"), timeout_s=0.05)
    rig.engine(QWEN).gate = gate
    with pytest.raises(DeadlineExceeded):
        await rig.service.chat(chat(n=2))
    assert rig.engine(QWEN).open_streams == set()


async def test_stream_ending_without_final_chunk_is_unavailable() -> None:
    rig = build_rig(lambda _r: [EngineChunk(text="a")])
    with pytest.raises(EngineUnavailable):
        await rig.service.chat(chat())


async def test_final_chunk_without_usage_is_an_engine_bug() -> None:
    rig = build_rig(lambda _r: [EngineChunk(text="a", finish_reason="stop")])
    with pytest.raises(ModelyardError) as caught:
        await rig.service.chat(chat())
    assert type(caught.value) is ModelyardError


async def test_error_chunks_from_a_process_boundary_are_raised_typed() -> None:
    info = ErrorInfo(kind="RateLimited", message="queue full", code="rate_limit_exceeded")
    rig = build_rig(lambda _r: [EngineChunk(error=info)])
    with pytest.raises(RateLimited) as caught:
        await rig.service.chat(chat())
    assert caught.value.message == "queue full"


async def test_success_records_metrics_and_one_span() -> None:
    rig = build_rig(lambda _r: text_chunks("a", "b", prompt=40, cached=32))
    response = await rig.service.chat(chat(max_tokens=5, temperature=0.3))
    assert rig.requests_total(QWEN, "chat", "200") == 1
    assert rig.metrics.sample("modelyard_time_to_first_token_seconds_count", {"model": QWEN}) == 1
    assert rig.metrics.sample("modelyard_prompt_tokens_total", {"model": QWEN}) == 40
    assert rig.metrics.sample("modelyard_cached_tokens_total", {"model": QWEN}) == 32
    assert rig.metrics.sample("modelyard_completion_tokens_total", {"model": QWEN}) == 2
    (span,) = rig.spans.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.response.id"] == response.id
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 32
    assert span.status.status_code == StatusCode.OK


async def test_streamed_request_records_once_at_the_end() -> None:
    rig = build_rig(lambda _r: text_chunks("a", "b"))
    chunks = [
        c
        async for c in rig.service.stream_chat(
            chat(stream=True, stream_options={"include_usage": True})
        )
    ]
    assert chunks[-1].usage is not None
    assert rig.requests_total(QWEN, "chat", "200") == 1
    assert len(rig.spans.get_finished_spans()) == 1


async def test_backend_health_reports_each_model() -> None:
    engines = {
        QWEN: ScriptedEngine(lambda _r: []),
        MINIMAX: ScriptedEngine(lambda _r: [], healthy=False),
    }
    backend = EngineBackend(engines)
    assert await backend.health() == {QWEN: True, MINIMAX: False}


async def test_backend_without_engine_for_model() -> None:
    backend = EngineBackend({})
    with pytest.raises(ModelyardError) as caught:
        async for _ in backend.generate(
            served_model(QWEN), EngineRequest(request_id="r", model=QWEN, prompt="x")
        ):
            pass
    assert caught.value.http_status == 404
