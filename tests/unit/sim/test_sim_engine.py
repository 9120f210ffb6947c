"""SimEngine beyond the shared contract: model-specific rules, isolation, limits, lifecycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from cluster.api.messages import Message, SystemMessage, UserMessage
from cluster.config import ModelDeployment, ServedModel, SimSettings, load_builtin_catalog
from cluster.engine import Engine, EngineChunk, EngineRequest, KVEventBatch
from cluster.errors import ContextLengthExceeded, EngineUnavailable, InvalidRequest
from deployments.engines.sim import RealClock, SimEngine, VirtualClock
from deployments.engines.sim.tokenizer import pieces

CATALOG = load_builtin_catalog()
MINIMAX = "minimax/minimax-m1"
QWEN = "qwen/qwen3-coder-flash"
AWQ = "casperhansen/mistral-small-24b-instruct-2501-awq"
LONG = " ".join(f"word{i}" for i in range(300))


def served(model_id: str, **sim: object) -> ServedModel:
    spec = CATALOG.find(model_id)
    assert spec is not None
    deployment = ModelDeployment(id=model_id, sim=SimSettings.model_validate(sim))
    return ServedModel(spec=spec, deployment=deployment)


def req(
    request_id: str, text: str = "Hello", system: str = LONG, **fields: object
) -> EngineRequest:
    messages: list[Message] = [
        SystemMessage(role="system", content=system),
        UserMessage(role="user", content=text),
    ]
    return EngineRequest.model_validate(
        {"request_id": request_id, "model": "m", "messages": messages, **fields}
    )


async def run(engine: SimEngine, request: EngineRequest) -> list[EngineChunk]:
    async with asyncio.timeout(10):
        return [c async for c in engine.generate(request)]


@pytest.fixture
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[SimEngine]:
    model_id, sim = getattr(request, "param", (QWEN, {}))
    eng = SimEngine(served(model_id, **sim), replica_id="r0", clock=VirtualClock())
    await eng.start()
    yield eng
    await eng.shutdown()


def drain_events(events: AsyncIterator[KVEventBatch]) -> asyncio.Task[list[KVEventBatch]]:
    async def consume() -> list[KVEventBatch]:
        return [b async for b in events]

    return asyncio.create_task(consume())


def test_labelled_simulated_and_an_engine() -> None:
    eng = SimEngine(served(QWEN), replica_id="r0")
    assert isinstance(eng, Engine)
    assert eng.simulated is True and eng.name == "sim"


def test_importable_without_ray_or_vllm() -> None:
    code = (
        "import sys, deployments.engines.sim;"
        "bad = [m for m in ('ray', 'vllm', 'torch') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("engine", [(MINIMAX, {})], indirect=True)
async def test_minimax_never_reports_cached_tokens_and_publishes_no_events(
    engine: SimEngine,
) -> None:
    events = engine.kv_events()
    task = drain_events(events)
    for i in range(3):
        chunks = await run(engine, req(f"m{i}"))
        assert chunks[-1].usage is not None and chunks[-1].usage.cached_tokens == 0
    stats = engine.stats()
    assert stats.prefix_cache_hits == 0 and stats.prefix_cache_queries == 0
    await engine.shutdown()
    assert await asyncio.wait_for(task, 5) == []


@pytest.mark.parametrize("engine", [(MINIMAX, {})], indirect=True)
async def test_reasoning_models_emit_raw_think_tags_in_text(engine: SimEngine) -> None:
    chunks = await run(engine, req("t1"))
    text = "".join(c.text for c in chunks)
    assert text.startswith("<think>") and "</think>" in text
    assert all(c.reasoning == "" for c in chunks), "the gateway splits reasoning, not the engine"


@pytest.mark.parametrize(
    ("first", "second", "hit"),
    [
        ({}, {}, True),
        ({}, {"adapter": "ad1"}, False),
        ({"adapter": "ad1"}, {"adapter": "ad1"}, True),
        ({"adapter": "ad1"}, {"adapter": "ad2"}, False),
        ({"cache_salt": "s1"}, {"cache_salt": "s1"}, True),
        ({"cache_salt": "s1"}, {"cache_salt": "s2"}, False),
        ({}, {"cache_salt": "s1"}, False),
    ],
)
@pytest.mark.parametrize("engine", [(AWQ, {})], indirect=True)
async def test_adapters_and_cache_salts_isolate_the_prefix_cache(
    engine: SimEngine, first: dict[str, str], second: dict[str, str], hit: bool
) -> None:
    await run(engine, req("a", **first))
    chunks = await run(engine, req("b", text="Other", **second))
    usage = chunks[-1].usage
    assert usage is not None and (usage.cached_tokens > 0) is hit


@pytest.mark.parametrize("engine", [(AWQ, {})], indirect=True)
async def test_stored_events_name_the_adapter(engine: SimEngine) -> None:
    events = engine.kv_events()
    await run(engine, req("a", adapter="ad1"))
    batch = await asyncio.wait_for(anext(events), 5)
    assert batch.seq == 0 and batch.replica_id == "r0"
    assert {e.lora_name for e in batch.events if e.type == "stored"} == {"ad1"}


@pytest.mark.parametrize("engine", [(QWEN, {"kv_blocks": 40})], indirect=True)
async def test_eviction_publishes_removed_events_in_sequence(engine: SimEngine) -> None:
    events = engine.kv_events()
    task = drain_events(events)
    for i in range(4):  # each ~330-token prompt takes ~21 of the 40 blocks
        await run(engine, req(f"e{i}", system=f"{i} " + LONG))
    await engine.shutdown()
    batches = await asyncio.wait_for(task, 5)
    assert [b.seq for b in batches] == list(range(len(batches)))
    kinds = [e.type for b in batches for e in b.events]
    assert "stored" in kinds and "removed" in kinds


@pytest.mark.parametrize(
    ("prompt_tokens", "max_tokens", "fits"),
    [(32767, None, True), (32768, None, False), (32760, 8, True), (32760, 9, False)],
)
@pytest.mark.parametrize("engine", [(AWQ, {})], indirect=True)
async def test_context_window_arithmetic(
    engine: SimEngine, prompt_tokens: int, max_tokens: int | None, fits: bool
) -> None:
    request = EngineRequest(
        request_id="c", model="m", prompt=" a" * prompt_tokens, max_tokens=max_tokens
    )
    if fits:
        chunks = await run(engine, request)
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.prompt_tokens == prompt_tokens
        assert chunks[-1].usage.completion_tokens <= 32768 - prompt_tokens
    else:
        with pytest.raises(ContextLengthExceeded, match=f"{prompt_tokens} in the prompt"):
            engine.generate(request)


@pytest.mark.parametrize("engine", [(QWEN, {"kv_blocks": 8})], indirect=True)
async def test_requests_larger_than_the_kv_cache_are_rejected(engine: SimEngine) -> None:
    with pytest.raises(ContextLengthExceeded, match="KV cache holds 128 tokens"):
        engine.generate(req("big"))


async def test_completion_tokens_are_the_streamed_text_retokenized(engine: SimEngine) -> None:
    chunks = await run(engine, req("h"))
    text = "".join(c.text for c in chunks)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(pieces(text)) == len(chunks) - 1


async def test_the_same_request_gives_the_same_output(engine: SimEngine) -> None:
    a = await run(engine, req("x1"))
    b = await run(engine, req("x2"))
    assert [c.text for c in a] == [c.text for c in b]


async def test_latency_grows_with_concurrent_load() -> None:
    async def latency(concurrency: int) -> float:
        clock = VirtualClock()
        eng = SimEngine(served(QWEN), replica_id="r0", clock=clock)
        await eng.start()
        requests = [req(f"l{i}", system=f"{i} {LONG}", max_tokens=20) for i in range(concurrency)]
        await asyncio.gather(*(run(eng, r) for r in requests))
        await eng.shutdown()
        return clock.now()

    one, many = await latency(1), await latency(32)
    assert many > one


@pytest.mark.parametrize("engine", [(QWEN, {"max_num_seqs": 1})], indirect=True)
async def test_requests_beyond_max_num_seqs_wait(engine: SimEngine) -> None:
    tasks = [asyncio.create_task(run(engine, req(f"w{i}", system=f"{i}"))) for i in range(3)]
    for _ in range(100):  # a few event-loop turns: the tasks join, the loop runs one step
        if engine.stats().running:
            break
        await asyncio.sleep(0)
    stats = engine.stats()
    assert stats.running == 1 and stats.waiting == 2
    await asyncio.gather(*tasks)


async def test_abort_mid_stream_ends_it_without_a_final_chunk() -> None:
    eng = SimEngine(served(QWEN), replica_id="r0", clock=RealClock(1.0))
    await eng.start()
    try:
        stream = eng.generate(req("ab", max_tokens=500))
        async with asyncio.timeout(10):
            first = await anext(stream)
            await eng.abort("ab")
            rest = [c async for c in stream]
        assert first.replica_id == "r0"
        assert all(c.finish_reason is None for c in rest)
        assert eng.stats().running == 0 and eng.stats().kv_usage == 0.0
    finally:
        await eng.shutdown()


async def test_lifecycle_errors() -> None:
    eng = SimEngine(served(QWEN), replica_id="r0", clock=VirtualClock())
    with pytest.raises(EngineUnavailable):
        eng.generate(req("early"))
    with pytest.raises(EngineUnavailable):
        await eng.check_health()
    await eng.start()
    await eng.check_health()
    stream = eng.generate(req("open", max_tokens=500))
    await anext(stream)
    with pytest.raises(InvalidRequest, match="already in flight"):
        eng.generate(req("open"))
    await eng.shutdown()
    with pytest.raises(EngineUnavailable):
        await anext(stream)
    with pytest.raises(EngineUnavailable):
        await eng.check_health()
    with pytest.raises(EngineUnavailable):
        await eng.start()


async def test_a_real_clock_runs_simulated_time_at_speedup() -> None:
    request = req("sp", max_tokens=60)
    virtual = VirtualClock()
    eng = SimEngine(served(QWEN), replica_id="r0", clock=virtual)
    await eng.start()
    await run(eng, request)
    await eng.shutdown()
    simulated = virtual.now()
    assert simulated > 0.1  # prefill + 60 decode steps of a few ms each

    speedup = 2.0
    eng = SimEngine(served(QWEN, speedup=speedup), replica_id="r0")  # RealClock(speedup)
    await eng.start()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await run(eng, request)
    wall = loop.time() - start
    await eng.shutdown()
    assert simulated / speedup * 0.9 <= wall <= simulated / speedup + 1.0


async def test_stall_marker_freezes_every_request_of_the_replica() -> None:
    """Fault injection (`sim.stall_marker`): once the marked request has produced tokens,
    the step loop stops for good."""
    eng = SimEngine(served(QWEN, stall_marker="@@stall@@"), replica_id="r0", clock=RealClock(50))
    await eng.start()
    try:
        healthy = await run(eng, req("before", max_tokens=4))
        assert healthy[-1].finish_reason is not None
        victim = eng.generate(req("victim", max_tokens=10_000))
        assert (await anext(victim)).text is not None  # running
        poison = eng.generate(req("poison", text="@@stall@@", max_tokens=10_000))
        assert (await anext(poison)).text is not None  # started, then the loop froze
        later = eng.generate(req("later", max_tokens=4))
        waiter = asyncio.ensure_future(anext(later))
        # Frozen: running requests get nothing more, a new one never starts ...
        for stream in (victim, poison):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    while True:
                        await anext(stream)
        assert not waiter.done()
        await eng.check_health()  # ... while the engine itself still answers its checks
        waiter.cancel()
        await victim.aclose()
        await poison.aclose()
    finally:
        await eng.shutdown()
