"""Hashing a request's prompt without holding up the router's event loop.

Serve calls a deployment's request router on one event loop per process (the handle's
router loop), which also applies KV events and answers every other request's routing.
Rendering and tokenising a new prompt for a vLLM model costs 10-15 ms for 4,000 tokens
(`deployments.routing.vllm_tokens`); on the loop, every other decision and KV batch
would wait that long. So:

    route(hasher, request):
        hasher.cached(request)              on the loop: a lookup, or cheap work (a
                                            repeated prompt, the simulator's tokeniser)
        else hasher.route_request(request)  on this router's worker thread; the loop
                                            awaits it and keeps serving meanwhile

A worker thread, not a process: the tokenizer is Rust (`tokenizers`) and releases the
GIL while it encodes (transformers calls `encode_batch`, which does), so the loop keeps
running on the other core; a process pool would need its own copy of the tokenizer and
of the prompt caches in every worker, and would pickle each request both ways.
`python -m bench.hashing_offload` measures both against hashing on the loop.

One worker by default: the hasher's caches are shared with the loop's lookups under a
lock, and its run cache (`vllm_segments`) is used by one thread at a time.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor, ThreadPoolExecutor

from cluster.engine import EngineRequest
from cluster.routing import RouteRequest
from deployments.routing.prompts import PromptHasher


class OffLoopHashing:
    """Runs the hashing a lookup cannot answer on a worker thread of its own."""

    def __init__(self, *, workers: int = 1, executor: Executor | None = None) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="routing-hash"
        )
        self.offloaded = 0

    async def route(self, hasher: PromptHasher, request: EngineRequest) -> RouteRequest:
        found = hasher.cached(request)
        if found is not None:
            return found
        self.offloaded += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, hasher.route_request, request)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
