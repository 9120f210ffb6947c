"""HandleBackend failover: retry before the first chunk, fail fast after it.

The deployment handle is replaced by a scripted stand-in (one script per call: chunks to
stream, then optionally an exception to raise); everything else is the real backend, and
the exceptions are Ray's own types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ray.exceptions import ActorDiedError, ActorUnavailableError
from ray.serve.exceptions import BackPressureError

from cluster.engine import EngineChunk, EngineRequest, Usage
from cluster.errors import EngineUnavailable, InvalidRequest, ModelyardError
from deployments.handle_backend import HandleBackend
from tests.unit.routing.replicas import QWEN, chat, served

Script = list[EngineChunk | BaseException]

TEXT = EngineChunk(text="hi", replica_id="r")
LAST = EngineChunk(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=1))


def error_chunk(err: ModelyardError) -> EngineChunk:
    return EngineChunk(error=err.info())


class _Response:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[list[EngineChunk]]:
        return self._run()

    async def _run(self) -> AsyncIterator[list[EngineChunk]]:
        # One chunk per item, as `ModelReplica.generate_batches` sends a slow engine's.
        for item in self.script:
            if isinstance(item, BaseException):
                raise item
            yield [item]

    def cancel(self) -> None:
        self.cancelled = True


class _Method:
    def __init__(self, scripts: list[Script]) -> None:
        self.scripts = scripts
        self.responses: list[_Response] = []

    def remote(self, request: EngineRequest) -> _Response:
        response = _Response(self.scripts[len(self.responses)])
        self.responses.append(response)
        return response


class ScriptedHandle:
    def __init__(self, *scripts: Script) -> None:
        self.generate_batches = _Method(list(scripts))

    def options(self, **_: Any) -> ScriptedHandle:
        return self

    @property
    def calls(self) -> int:
        return len(self.generate_batches.responses)


async def collect(backend: HandleBackend) -> list[EngineChunk]:
    return [c async for c in backend.generate(served(QWEN), chat("q", "hello"))]


@pytest.mark.parametrize(
    "failure",
    [
        ActorDiedError(),
        ActorUnavailableError("gone", b"\x00" * 16),
        error_chunk(EngineUnavailable("replica shutting down")),
    ],
    ids=["actor-died", "actor-unavailable", "engine-unavailable-chunk"],
)
async def test_a_failure_before_the_first_chunk_is_retried(
    failure: EngineChunk | BaseException,
) -> None:
    handle = ScriptedHandle([failure], [TEXT, LAST])
    chunks = await collect(HandleBackend({QWEN: handle}))
    assert chunks == [TEXT, LAST]
    assert handle.calls == 2


async def test_a_failure_after_the_first_chunk_ends_the_stream() -> None:
    handle = ScriptedHandle([TEXT, ActorDiedError()], [TEXT, LAST])
    seen: list[EngineChunk] = []
    with pytest.raises(EngineUnavailable):
        async for chunk in HandleBackend({QWEN: handle}).generate(served(QWEN), chat("q", "x")):
            seen.append(chunk)
    assert seen == [TEXT]
    assert handle.calls == 1


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_attempts_are_bounded(attempts: int) -> None:
    scripts: list[Script] = [[ActorDiedError()] for _ in range(attempts + 1)]
    handle = ScriptedHandle(*scripts)
    with pytest.raises(EngineUnavailable):
        await collect(HandleBackend({QWEN: handle}, failover_attempts=attempts))
    assert handle.calls == attempts


@pytest.mark.parametrize(
    ("script", "error"),
    [
        ([error_chunk(InvalidRequest("bad", param="messages"))], InvalidRequest),
        ([BackPressureError(num_queued_requests=9, max_queued_requests=8)], EngineUnavailable),
    ],
    ids=["engine-judged", "back-pressure"],
)
async def test_other_failures_are_not_retried(script: Script, error: type[ModelyardError]) -> None:
    handle = ScriptedHandle(script, [TEXT, LAST])
    with pytest.raises(error):
        await collect(HandleBackend({QWEN: handle}))
    assert handle.calls == 1


async def test_closing_early_cancels_the_replica_call() -> None:
    handle = ScriptedHandle([TEXT, TEXT, LAST])
    stream = HandleBackend({QWEN: handle}).generate(served(QWEN), chat("q", "x"))
    assert await anext(stream) == TEXT
    await stream.aclose()  # type: ignore[attr-defined]
    assert handle.generate_batches.responses[0].cancelled


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="failover_attempts"):
        HandleBackend({}, failover_attempts=0)
