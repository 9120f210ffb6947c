"""`ModelReplica.check_health` with the progress watchdog: a stalled engine's replica fails
its check, ends its open streams with `EngineUnavailable` at once, and refuses new ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import EngineUnavailable
from tests.unit.model_replica.test_generate_batches import REQUEST, ScriptedEngine, replica


class StuckEngine(ScriptedEngine):
    """One chunk, then nothing ever again (a hung step loop)."""

    def __init__(self) -> None:
        super().__init__(count=1)

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        yield EngineChunk(text="t0")
        await asyncio.Event().wait()


async def test_a_stalled_replica_fails_its_check_and_ends_its_streams() -> None:
    engine = StuckEngine()
    rep = replica(engine, stall_after_s=0.2)
    stream = rep.generate_batches(REQUEST)
    assert [c.text for c in await anext(stream)] == ["t0"]
    waiting = asyncio.ensure_future(anext(stream))
    await rep.check_health()  # quiet for less than 0.2 s: healthy
    await asyncio.sleep(0.3)
    assert not waiting.done()
    with pytest.raises(EngineUnavailable, match="stopped making progress"):
        await rep.check_health()
    async with asyncio.timeout(2):
        [ended] = await waiting
    assert ended.error is not None and ended.error.code == "engine_unavailable"
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    assert engine.aborted == [REQUEST.request_id]  # the engine request was aborted
    # New calls are refused the same way, before reaching the engine; the check stays failed.
    [[refused]] = [b async for b in rep.generate_batches(REQUEST)]
    assert refused.error is not None and refused.error.code == "engine_unavailable"
    with pytest.raises(EngineUnavailable):
        await rep.check_health()


async def test_a_busy_replica_that_makes_progress_stays_healthy() -> None:
    rep = replica(ScriptedEngine(count=8, gap_s=0.05), stall_after_s=0.2)  # type: ignore[arg-type]
    stream = rep.generate_batches(REQUEST)
    async for _ in stream:
        await rep.check_health()
