"""The overhead benchmark's requests and statistics: request bodies, the decision cost of
hashing a prompt, timing requests through an endpoint, percentiles and the table
(`bench.overhead_bench` runs the sessions).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.overhead_serve import MODEL


def body(i: int, words: int, max_tokens: int) -> dict[str, Any]:
    system = " ".join(f"Rule {k}: answer briefly and cite the section." for k in range(words // 8))
    return {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Question number {i}: what does section {i % 97} say?"},
        ],
        "max_tokens": max_tokens,
    }


def decision_cost(make_body: Callable[[int], dict[str, Any]], count: int) -> dict[str, float]:
    """The router's per-request work (hash the prompt, rank two replicas) alone in this
    process, one thread: CPU microseconds p50/p99 over `count` requests."""
    from cluster.engine import EngineRequest
    from cluster.routing import ReplicaLoad, Router, RoutingSettings
    from deployments.routing.prompts import SimPromptHasher

    hasher = SimPromptHasher(block_tokens=16, prefix_caching=True)
    router = Router(RoutingSettings())
    loads = [ReplicaLoad(replica_id="a"), ReplicaLoad(replica_id="b", queued_prefill_tokens=50)]
    spent: list[float] = []
    for i in range(count):
        request = EngineRequest.model_validate(
            {"request_id": f"d{i}", "model": MODEL, "messages": make_body(i)["messages"]}
        )
        started = time.thread_time_ns()
        route = hasher.route_request(request)
        ranked = router.rank(route, loads, now=float(i))
        spent.append((time.thread_time_ns() - started) / 1000.0)
        router.on_routed(route, ranked[0].replica_id, now=float(i))
    return {"count": count, "p50": pct(spent, 0.50), "p99": pct(spent, 0.99)}


def measure(
    urls: dict[str, str],
    *,
    rounds: int,
    warmup: int,
    make_body: Callable[[int], dict[str, Any]],
    seed: int,
    progress: Callable[[str], None],
) -> dict[str, list[float]]:
    """Latency (ms) per path; one request per path per round, in a shuffled order."""
    rng = random.Random(seed)  # nosec B311
    samples: dict[str, list[float]] = {name: [] for name in urls}
    names = list(urls)
    with httpx.Client(timeout=30.0) as client:
        for r in range(warmup + rounds):
            rng.shuffle(names)
            for name in names:
                started = time.perf_counter()
                reply = client.post(urls[name], json=make_body(r))
                elapsed = (time.perf_counter() - started) * 1000.0
                if reply.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {reply.status_code}: {reply.text[:200]}")
                if r >= warmup:
                    samples[name].append(elapsed)
            if r >= warmup and (r - warmup + 1) % max(1, rounds // 10) == 0:
                progress(f"  {r - warmup + 1}/{rounds} rounds")
    return samples


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    direct = samples["direct"]
    out: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        paired = [v - d for v, d in zip(values, direct, strict=True)]
        out[name] = {
            "p50_ms": pct(values, 0.50),
            "p90_ms": pct(values, 0.90),
            "p99_ms": pct(values, 0.99),
            "added_p50_ms": pct(values, 0.50) - pct(direct, 0.50),
            "added_p99_ms": pct(values, 0.99) - pct(direct, 0.99),
            "paired_p50_ms": pct(paired, 0.50),
            "paired_p99_ms": pct(paired, 0.99),
        }
    return out


def table(summary: dict[str, dict[str, float]]) -> str:
    width = max(10, *(len(name) for name in summary))
    head = (
        f"{'path':<{width}} {'p50':>7} {'p90':>7} {'p99':>7} | added over direct: "
        f"{'p50':>6} {'p99':>6} | paired diff: {'p50':>6} {'p99':>6}   (ms)"
    )
    lines = [head]
    for name, s in summary.items():
        lines.append(
            f"{name:<{width}} {s['p50_ms']:7.2f} {s['p90_ms']:7.2f} {s['p99_ms']:7.2f} | "
            f"{'':>19}{s['added_p50_ms']:6.2f} {s['added_p99_ms']:6.2f} | "
            f"{'':>13}{s['paired_p50_ms']:6.2f} {s['paired_p99_ms']:6.2f}"
        )
    return "\n".join(lines)
