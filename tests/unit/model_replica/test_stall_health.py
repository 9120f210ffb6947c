"""`ModelReplica.check_health` with the progress watchdog: a replica whose engine has
requests in flight but makes no progress for `stall_after_s` ends its own process (here a
stand-in for `os._exit` records it); a busy replica that makes progress stays healthy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cluster.engine import EngineChunk, EngineRequest
from tests.unit.model_replica.test_generate_batches import (
    REQUEST,
    Exited,
    ScriptedEngine,
    replica,
)


class StuckEngine(ScriptedEngine):
    """One chunk, then nothing ever again (a hung step loop)."""

    def __init__(self) -> None:
        super().__init__(count=1)

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        yield EngineChunk(text="t0")
        await asyncio.Event().wait()


async def test_a_stalled_replica_exits_on_its_health_check() -> None:
    rep = replica(StuckEngine(), stall_after_s=0.2)
    stream = rep.generate_batches(REQUEST)
    assert [c.text for c in await anext(stream)] == ["t0"]
    waiting = asyncio.ensure_future(anext(stream))
    await rep.check_health()  # quiet for less than 0.2 s: healthy
    await asyncio.sleep(0.3)
    assert not waiting.done()
    with pytest.raises(Exited) as exited:
        await rep.check_health()
    assert exited.value.args == (1,)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)


async def test_an_idle_replica_is_healthy_however_long_it_waits() -> None:
    rep = replica(ScriptedEngine(count=2), stall_after_s=0.05)
    assert len([b async for b in rep.generate_batches(REQUEST)]) >= 1
    await asyncio.sleep(0.1)
    await rep.check_health()


async def test_a_busy_replica_that_makes_progress_stays_healthy() -> None:
    rep = replica(ScriptedEngine(count=8, gap_s=0.05), stall_after_s=0.2)
    async for _ in rep.generate_batches(REQUEST):
        await rep.check_health()
