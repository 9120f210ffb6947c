"""The `Engine` protocol. `VLLMEngine` and `SimEngine` both pass tests/contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from cluster.engine.types import EngineChunk, EngineRequest, EngineStats, KVEventBatch


@runtime_checkable
class Engine(Protocol):
    """A model engine hosted by one replica.

    - `generate` validates the request against what only the engine can judge (tokenised
      prompt length vs. context window, unknown adapter) and raises a typed
      `cluster.errors.ModelyardError` *before* yielding anything; afterwards it yields chunks,
      the last one with `finish_reason` and `usage`.
    - Cancelling the iterator (or `abort`) frees the request's resources.
    """

    @property
    def name(self) -> str:
        """A short label for logs and responses, e.g. 'sim' or 'vllm'."""
        ...

    @property
    def simulated(self) -> bool: ...

    async def start(self) -> None: ...

    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]: ...

    async def abort(self, request_id: str) -> None: ...

    def stats(self) -> EngineStats: ...

    def kv_events(self) -> AsyncIterator[KVEventBatch]:
        """Block stored/removed events in order. Engines without prefix caching yield none."""
        ...

    async def check_health(self) -> None:
        """Raise `EngineUnavailable` if the engine cannot serve."""
        ...

    async def shutdown(self) -> None: ...
