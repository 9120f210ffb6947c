"""Decision cost of `Router.select`: one long prompt among many replicas.

Setup: `replicas` replicas; a pool of 64 distinct prompts of `prompt_tokens` tokens, each
a chain of P = prompt_tokens // block_tokens block hashes; for every prompt, `holders`
replicas (all of them by default) hold prefixes of it of different lengths: holder j of
H holds (exactly, via the index) the first ceil(P * (j + 1) / H) blocks, so every decision
walks the whole prompt with the holders dropping out one by one. With H = R that is the
most work the index walk can do; a prompt cached on a few replicas (H = 1..4) is the
common case. With `stride` k the index keeps every k-th block, as `IndexSettings.stride`
makes the router do. Unrelated blocks fill the index to at least 200,000 entries.
Loads are drawn from a seeded RNG. Each decision is timed alone, twice over: wall clock
(`perf_counter_ns`) and this thread's CPU time (`thread_time_ns`, which a busy shared host
does not inflate by descheduling the process; it adds ~1-3 us of its own call cost).
"""

from __future__ import annotations

import gc
import math
import random
import time

import numpy as np

from cluster.routing import (
    IndexSettings,
    ReplicaLoad,
    Router,
    RouteRequest,
    RoutingSettings,
)

PROMPTS = 64
MIN_INDEXED = 200_000


def measure_decision_cost(
    *,
    replicas: int,
    prompt_tokens: int,
    block_tokens: int,
    decisions: int,
    holders: int | None = None,
    stride: int = 1,
    seed: int = 0,
) -> dict[str, float]:
    rng = random.Random(seed)  # nosec B311
    blocks = max(1, prompt_tokens // block_tokens)
    cap = max(MIN_INDEXED * 2, PROMPTS * blocks * 2)
    router = Router(
        RoutingSettings(
            index=IndexSettings(block_tokens=block_tokens, max_blocks=cap, stride=stride)
        )
    )
    ids = [f"replica-{j}" for j in range(replicas)]
    hold = replicas if holders is None else max(1, min(holders, replicas))
    prompts: list[list[int]] = []
    for p in range(PROMPTS):
        chain = [(p << 32) | b for b in range(blocks)]
        prompts.append(chain)
        for j in range(hold):
            rid = ids[(p + j * max(1, replicas // hold)) % replicas]
            held = chain[: math.ceil(blocks * (j + 1) / hold)]
            router.index.store_exact(rid, held[stride - 1 :: stride])
    filler = MIN_INDEXED - len(router.index)
    for k in range(max(0, filler)):
        router.index.store_exact(ids[k % replicas], [(1 << 60) | k])
    requests = [
        RouteRequest(f"q{i}", prompts[i % PROMPTS], prompt_tokens) for i in range(decisions)
    ]
    loads = [
        [
            ReplicaLoad(
                rid, queued_prefill_tokens=rng.randrange(0, 200_000), running=rng.randrange(0, 64)
            )
            for rid in ids
        ]
        for _ in range(16)
    ]
    gc.collect()
    wall: list[int] = []
    cpu: list[int] = []
    for i, request in enumerate(requests):
        fleet = loads[i % len(loads)]
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        router.select(request, fleet, now=0.0)
        t1 = time.perf_counter_ns()
        c1 = time.thread_time_ns()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    us = np.array(wall, dtype=float) / 1000.0
    cpu_us = np.array(cpu, dtype=float) / 1000.0
    return {
        "replicas": float(replicas),
        "holders": float(hold),
        "prompt_tokens": float(prompt_tokens),
        "prompt_blocks": float(blocks),
        "block_tokens": float(block_tokens),
        "stride": float(stride),
        "indexed_blocks": float(len(router.index)),
        "decisions": float(decisions),
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
        "cpu_p50_us": float(np.percentile(cpu_us, 50)),
        "cpu_p99_us": float(np.percentile(cpu_us, 99)),
    }
