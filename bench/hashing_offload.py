"""Routing decisions for new vLLM prompts, with tokenising on or off the router's loop.

`python -m bench.hashing_offload` — one asyncio loop stands in for a router's: it takes
N concurrent new chat prompts (default 1,000 of ~4,000 tokens, distinct after their
first few tokens, so no cache helps), hashes each with `VLLMPromptHasher` on the model's own
tokenizer, and ranks it with `cluster.routing.Router` among R replicas (default 64; the
index holds earlier prompts' blocks, the loads grow with each decision). Modes:

- `loop`: `route_request` on the loop (before `deployments.routing.offload`);
- `thread`, `thread2`: `OffLoopHashing` with 1 / 2 worker threads (the router's is 1);
- `process`: a process pool of 2 workers, each with its own renderer (spawned; the
  renderers' load time is reported, not counted).

Per mode and run: decisions per second (N / time until the last decision), the time
to the last decision, and the loop's lag while they run — a ticker asks for 1 ms sleeps
and records how late each wakes up (what every other request's routing and each KV
batch would wait; with `loop`, the tasks hash back to back in one pass of the loop, so
its lag is about the whole run; "max after 1 s" leaves out the loop pass in which all N
requests arrive together, which every mode pays). The renderer is warmed on 20 other prompts first.
Every mode must produce the same hashes for every prompt (a digest per prompt is
compared; a mismatch stops the run). Medians over `--runs`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cluster.config.catalog import load_builtin_catalog
from cluster.config.loader import load_config
from cluster.config.settings import ServedModel
from cluster.engine import EngineRequest
from cluster.routing import IndexSettings, ReplicaLoad, Router, RouteRequest, RoutingSettings
from deployments.routing.offload import OffLoopHashing
from deployments.routing.vllm_tokens import RendererLoader, VLLMPromptHasher

MODES = ("loop", "thread", "thread2", "process")
Hash = Callable[[EngineRequest], "asyncio.Future[RouteRequest] | RouteRequest"]


class _Worker:
    """A process-pool worker's hasher (built once per worker by the pool's initializer)."""

    hasher: VLLMPromptHasher | None = None

    @classmethod
    def start(cls, model: ServedModel, block_tokens: int) -> None:
        loader = RendererLoader(model, background=False)
        cls.hasher = VLLMPromptHasher(loader, block_tokens=block_tokens, prefix_caching=True)

    @classmethod
    def route(cls, request: EngineRequest) -> RouteRequest:
        assert cls.hasher is not None
        return cls.hasher.route_request(request)


_WORDS = (
    "route",
    "block",
    "cache",
    "token",
    "prefix",
    "replica",
    "engine",
    "prompt",
    "model",
    "queue",
    "index",
    "event",
    "hash",
    "chain",
    "thread",
    "loop",
    "worker",
    "cluster",
)


def new_prompt(model: str, seed: int, words: int) -> EngineRequest:
    """A chat prompt no other seed shares past its first few tokens (seeded words)."""
    rng = random.Random(seed)  # nosec B311
    text = f"Request {seed}: " + " ".join(
        f"{rng.choice(_WORDS)}{rng.randrange(1000)}" for _ in range(words)
    )
    return EngineRequest.model_validate(
        {
            "request_id": f"bench-{seed}",
            "model": model,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": text},
            ],
        }
    )


def _digest(route: RouteRequest) -> bytes:
    data = b"".join(h.to_bytes(8, "little") for h in route.block_hashes)
    return hashlib.blake2b(data + route.prompt_tokens.to_bytes(4, "little"), digest_size=8).digest()


async def _decide_all(
    requests: Sequence[EngineRequest],
    hash_one: Callable[[EngineRequest], object],
    replicas: int,
    block_tokens: int,
) -> tuple[float, list[tuple[float, float]], dict[str, bytes]]:
    """(seconds to the last decision, (seconds since the start, loop lag) per tick,
    digest per request id)."""
    router = Router(RoutingSettings(index=IndexSettings(block_tokens=block_tokens)))
    queued = {f"replica-{i}": 0 for i in range(replicas)}
    digests: dict[str, bytes] = {}
    lags: list[tuple[float, float]] = []  # (when asked, lag)
    done = False

    async def ticker() -> None:
        while not done:
            asked = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((asked, time.perf_counter() - asked - 0.001))

    async def decide(request: EngineRequest) -> None:
        found = hash_one(request)
        route = await found if asyncio.isfuture(found) or asyncio.iscoroutine(found) else found
        assert isinstance(route, RouteRequest)
        loads = [ReplicaLoad(rid, queued_prefill_tokens=q) for rid, q in queued.items()]
        now = time.monotonic()
        chosen = router.rank(route, loads, now)[0].replica_id
        router.on_routed(route, chosen, now)
        queued[chosen] += route.prompt_tokens
        digests[request.request_id] = _digest(route)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await asyncio.gather(*(decide(r) for r in requests))
    elapsed = time.perf_counter() - started
    done = True
    await tick
    return elapsed, [(t - started, lag) for t, lag in lags], digests


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_mode(
    mode: str,
    model: ServedModel,
    loader: RendererLoader,
    requests: Sequence[EngineRequest],
    *,
    replicas: int,
    block_tokens: int,
    pool: ProcessPoolExecutor | None,
) -> tuple[float, list[tuple[float, float]], dict[str, bytes]]:
    hasher = VLLMPromptHasher(loader, block_tokens=block_tokens, prefix_caching=True)
    offload: OffLoopHashing | None = None
    hash_one: Callable[[EngineRequest], object]
    if mode == "loop":
        hash_one = hasher.route_request
    elif mode in ("thread", "thread2"):
        offload = OffLoopHashing(workers=1 if mode == "thread" else 2)
        hashing = offload

        def hash_one(request: EngineRequest) -> object:
            return hashing.route(hasher, request)

    else:
        assert pool is not None
        executor = pool

        def hash_one(request: EngineRequest) -> object:
            return asyncio.get_running_loop().run_in_executor(executor, _Worker.route, request)

    try:
        return asyncio.run(_decide_all(requests, hash_one, replicas, block_tokens))
    finally:
        if offload is not None:
            offload.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hashing_offload")
    parser.add_argument("--config", type=Path, default=Path("cluster/config/local.yaml"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--context", type=int, default=8192, help="catalog window override")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--words", type=int, default=1000, help="~4 tokens per word")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--block-tokens", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)
    served = {m.id: m for m in load_config(args.config).served_models(load_builtin_catalog())}
    base = served[args.model]
    model = base.model_copy(
        update={"spec": base.spec.model_copy(update={"context_window": args.context})}
    )
    loader = RendererLoader(model, background=False)
    if loader.renderer is None:
        raise SystemExit(f"the tokenizer of {model.id} did not load: {loader.error}")
    requests = [new_prompt(model.id, 100_000 + i, args.words) for i in range(args.prompts)]
    warm = VLLMPromptHasher(loader, block_tokens=args.block_tokens, prefix_caching=True)
    for i in range(20):  # the tokenizer's first calls are slower: not part of any mode
        warm.route_request(new_prompt(model.id, 900_000 + i, args.words))
    tokens = statistics.median(
        len(loader.renderer.prompt_ids(r)) for r in requests[: min(20, len(requests))]
    )
    print(
        f"{args.prompts} concurrent new prompts of ~{tokens:.0f} tokens, {args.replicas} "
        f"replicas, {args.block_tokens}-token blocks, {args.runs} runs per mode "
        f"({multiprocessing.cpu_count()} CPUs)"
    )
    pool: ProcessPoolExecutor | None = None
    if "process" in args.modes:
        started = time.perf_counter()
        pool = ProcessPoolExecutor(
            max_workers=2,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_Worker.start,
            initargs=(model, args.block_tokens),
        )
        list(pool.map(time.sleep, [0.5, 0.5]))  # both workers up, renderers loaded
        print(f"process pool: 2 workers ready in {time.perf_counter() - started:.1f} s")
    reference: dict[str, bytes] | None = None
    try:
        for mode in args.modes:
            rates, lasts, p50s, p99s, worsts, later = [], [], [], [], [], []
            for _ in range(args.runs):
                elapsed, lags, digests = run_mode(
                    mode,
                    model,
                    loader,
                    requests,
                    replicas=args.replicas,
                    block_tokens=args.block_tokens,
                    pool=pool,
                )
                if reference is None:
                    reference = digests
                elif digests != reference:
                    raise SystemExit(f"mode {mode}: hashes differ from the first mode's")
                rates.append(len(requests) / elapsed)
                lasts.append(elapsed)
                values = [lag for _, lag in lags]
                p50s.append(_pct(values, 0.5) * 1e3)
                p99s.append(_pct(values, 0.99) * 1e3)
                worsts.append(max(values) * 1e3)
                # Past the first second: after the pass in which all N requests arrive.
                later.append(max([lag for t, lag in lags if t > 1.0], default=0.0) * 1e3)
            med = statistics.median
            runs = ", ".join(f"{r:.0f}" for r in rates)
            print(
                f"{mode:>8}: {med(rates):6.0f} decisions/s (runs {runs})"
                f"  last decision {med(lasts):5.2f} s  loop lag p50 {med(p50s):6.2f} ms"
                f"  p99 {med(p99s):6.2f} ms  max {med(worsts):6.1f} ms"
                f"  max after 1 s {med(later):6.1f} ms"
            )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    print("hashes: identical in every mode and run")


if __name__ == "__main__":
    main()
