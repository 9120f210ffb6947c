"""`ModelReplica.generate_batches`: chunks ready together cross the hop as one item."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import NoReturn

from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import InvalidRequest
from deployments.autoscaling_signals import ReplicaSignals
from deployments.model_deployment import ModelReplica
from deployments.replica_methods import GENERATE_BATCHES, GENERATE_METHODS
from deployments.watchdog import ProgressWatchdog


class ScriptedEngine:
    """Yields `count` chunks, sleeping `gap_s` between them (0: all at once); can fail."""

    def __init__(self, count: int, gap_s: float = 0.0, fail_after: int | None = None) -> None:
        self.count = count
        self.gap_s = gap_s
        self.fail_after = fail_after
        self.aborted: list[str] = []

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        for i in range(self.count):
            if self.fail_after is not None and i == self.fail_after:
                raise InvalidRequest("scripted failure", param="messages")
            if self.gap_s:
                await asyncio.sleep(self.gap_s)
            yield EngineChunk(text=f"t{i}", finish_reason="stop" if i == self.count - 1 else None)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def check_health(self) -> None:
        return None


class Exited(Exception):
    """Raised by the test's stand-in for `os._exit`."""


def exit_recorder(code: int) -> NoReturn:
    raise Exited(code)


class _Replica(ModelReplica):
    def __del__(self) -> None:  # Serve awaits the async one on shutdown; nothing to stop here
        pass


def replica(engine: ScriptedEngine, stall_after_s: float = 60.0) -> ModelReplica:
    # The constructor starts a real engine inside Ray; the method under test needs only these.
    instance = _Replica.__new__(_Replica)
    instance._engine = engine  # type: ignore[assignment]
    instance._replica_id = "r0"
    instance._signals = ReplicaSignals()
    instance._watchdog = ProgressWatchdog(stall_after_s)
    instance._exit = exit_recorder
    instance._closed = False
    return instance


REQUEST = EngineRequest(request_id="req-1", model="m", prompt="hi", max_tokens=8)


async def batches_of(engine: ScriptedEngine) -> list[list[EngineChunk]]:
    async with asyncio.timeout(5):
        return [b async for b in replica(engine).generate_batches(REQUEST)]


async def test_chunks_ready_at_once_are_one_item() -> None:
    batches = await batches_of(ScriptedEngine(count=6))
    assert [len(b) for b in batches] == [6]
    assert [c.text for c in batches[0]] == [f"t{i}" for i in range(6)]
    assert batches[0][0].replica_id == "r0"
    assert batches[0][-1].finish_reason == "stop"


async def test_a_chunk_is_never_held_back_for_company() -> None:
    batches = await batches_of(ScriptedEngine(count=4, gap_s=0.02))
    assert [len(b) for b in batches] == [1, 1, 1, 1]


async def test_an_engine_error_is_the_last_chunk_of_the_last_item() -> None:
    batches = await batches_of(ScriptedEngine(count=5, fail_after=3))
    chunks = [c for b in batches for c in b]
    assert [c.text for c in chunks[:3]] == ["t0", "t1", "t2"]
    assert chunks[-1].error is not None and chunks[-1].error.param == "messages"
    assert len(chunks) == 4


async def test_closing_the_stream_aborts_the_engine_request() -> None:
    engine = ScriptedEngine(count=100, gap_s=0.01)
    stream = replica(engine).generate_batches(REQUEST)
    async with asyncio.timeout(5):
        first = await anext(stream)  # type: ignore[call-overload]
        await stream.aclose()  # type: ignore[attr-defined]
    assert len(first) == 1
    assert engine.aborted == ["req-1"]


def test_the_method_names_the_gateway_and_the_router_use_exist() -> None:
    for name in GENERATE_METHODS:
        assert inspect.isasyncgenfunction(getattr(ModelReplica, name)), name
    assert GENERATE_BATCHES in GENERATE_METHODS
