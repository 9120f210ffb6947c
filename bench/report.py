"""Summaries of replay runs: the numbers `modelyard bench route` prints and writes as JSON.

Per policy:
- token hit rate = cached prompt tokens / prompt tokens (cached at first admission);
- TTFT p50/p99 in simulated seconds (first token time - arrival time, trace time divided
  by the speedup);
- prefill tokens per replica (prompt - cached, summed) and max/mean over replicas;
- cost in the price table's currency: sum of `PriceBook.cost` over requests, and the
  saving against round robin run in the same invocation;
- decision latency p50/p99 (the policy's `choose`, wall clock) and decisions per second =
  requests / (all policy CPU time: choose + routed/completed/KV-event hooks);
- where the missed hits went (shares of prompt tokens, at arrival): `lost_to_placement`
  (the prefix was cached on another replica than the chosen one) and `lost_to_capacity`
  (one infinite cache would hit it, no replica still held it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bench.replay import PolicyRun
from cluster.engine import Usage


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicyResult(_Strict):
    policy: str
    requests: int
    token_hit_rate: float
    ttft_p50_s: float
    ttft_p99_s: float
    ttft_mean_s: float
    prefill_tokens_per_replica: list[int]
    prefill_max_over_mean: float
    cost: Decimal
    saving_vs_round_robin: float | None = Field(
        default=None, description="1 - cost / cost(round-robin), when round robin ran"
    )
    decisions_per_s: float
    decision_p50_us: float
    decision_p99_us: float
    lost_to_placement: float = Field(
        description="prompt-token share cached on another replica than the chosen one"
    )
    lost_to_capacity: float = Field(
        description="prompt-token share an infinite cache would hit but no replica held"
    )
    preemptions: int
    makespan_s: float


class BenchSettings(_Strict):
    trace: str
    requests: int
    replicas: int
    kv_blocks: int
    block_tokens: int
    speedup: float
    seed: int
    model: str
    gpu: str
    prices: str = Field(description="the model whose price table costs the requests")


class BenchResult(_Strict):
    settings: BenchSettings
    infinite_cache_hit_rate: float = Field(description="one replica, unbounded blocks")
    pooled_lru_hit_rate: float = Field(
        description="one LRU cache of replicas x kv_blocks, requests one at a time"
    )
    pooled_belady_hit_rate: float = Field(
        description="the same single cache with optimal (Belady) eviction"
    )
    repeats: int = Field(default=1, description="runs per policy; timings are their medians")
    currency: str
    weights: dict[str, float] = Field(
        default_factory=dict, description="scorer weights overridden with --weight"
    )
    results: list[PolicyResult]


CostFn = Callable[[Usage], Decimal]


def summarise(
    run: PolicyRun, cost_of: CostFn, infinite_hits: Mapping[int, int] | None = None
) -> PolicyResult:
    """`infinite_hits`: per trace request (by index), the tokens one infinite cache hits."""
    records = run.records
    prompt = sum(r.request.input_length for r in records)
    cached = sum(max(0, r.cached_tokens) for r in records)
    ttft = np.array([r.first_token_s - r.arrival_s for r in records], dtype=float)
    decisions = np.array(run.decision_ns, dtype=float) / 1000.0
    policy_ns = float(np.sum(run.decision_ns)) + run.bookkeeping_ns
    prefill = run.prefill_tokens
    mean_prefill = sum(prefill) / len(prefill)
    cost = sum(
        (
            cost_of(
                Usage(
                    prompt_tokens=r.request.input_length,
                    completion_tokens=r.request.output_length,
                    cached_tokens=max(0, r.cached_tokens),
                )
            )
            for r in records
        ),
        Decimal(0),
    )
    placement = sum(r.best_cached_at_arrival - r.chosen_cached_at_arrival for r in records)
    capacity = 0
    if infinite_hits is not None:
        capacity = sum(
            max(0, infinite_hits[r.request.index] - r.best_cached_at_arrival) for r in records
        )
    return PolicyResult(
        policy=run.policy,
        requests=len(records),
        token_hit_rate=cached / prompt if prompt else 0.0,
        ttft_p50_s=float(np.percentile(ttft, 50)),
        ttft_p99_s=float(np.percentile(ttft, 99)),
        ttft_mean_s=float(ttft.mean()),
        prefill_tokens_per_replica=list(prefill),
        prefill_max_over_mean=max(prefill) / mean_prefill if mean_prefill else 1.0,
        cost=cost.quantize(Decimal("0.01")),
        decisions_per_s=len(records) / (policy_ns / 1e9) if policy_ns else 0.0,
        decision_p50_us=float(np.percentile(decisions, 50)),
        decision_p99_us=float(np.percentile(decisions, 99)),
        lost_to_placement=placement / prompt if prompt else 0.0,
        lost_to_capacity=capacity / prompt if prompt else 0.0,
        preemptions=run.preemptions,
        makespan_s=run.makespan_s,
    )


def add_savings(results: Sequence[PolicyResult]) -> list[PolicyResult]:
    base = next((r for r in results if r.policy == "round-robin"), None)
    if base is None or base.cost == 0:
        return list(results)
    return [
        r.model_copy(update={"saving_vs_round_robin": float(1 - r.cost / base.cost)})
        for r in results
    ]


def render_table(result: BenchResult) -> str:
    s = result.settings
    lines = [
        f"trace {s.trace}: {s.requests} requests, {s.replicas} replicas x {s.kv_blocks} "
        f"blocks of {s.block_tokens} tokens, speedup {s.speedup:g}, {s.model} on {s.gpu} "
        f"(simulated), seed {s.seed}; cost at {s.prices} prices",
        f"hit-rate references: one infinite cache {result.infinite_cache_hit_rate:.3f}; "
        f"one cache of {s.replicas * s.kv_blocks} blocks with LRU eviction "
        f"{result.pooled_lru_hit_rate:.3f}, with optimal eviction "
        f"{result.pooled_belady_hit_rate:.3f}",
        *([f"modelyard weights overridden: {result.weights}"] if result.weights else []),
        f"simulated results are deterministic; decision timings are medians of "
        f"{result.repeats} run(s) (wall clock, this host)",
        "",
    ]
    header = (
        "| policy | token hit rate | TTFT p50 | TTFT p99 | max/mean prefill | "
        f"cost ({result.currency}) | saving vs RR | decisions/s | decision p50 | decision p99 | "
        "missed: placement / capacity |"
    )
    lines += [header, "|" + "---|" * 11]
    for r in result.results:
        saving = "" if r.saving_vs_round_robin is None else f"{r.saving_vs_round_robin:+.1%}"
        lines.append(
            f"| {r.policy} | {r.token_hit_rate:.3f} | {r.ttft_p50_s:.2f} s | "
            f"{r.ttft_p99_s:.2f} s | {r.prefill_max_over_mean:.3f} | {r.cost:,.2f} | "
            f"{saving} | {r.decisions_per_s:,.0f} | {r.decision_p50_us:.1f} µs | "
            f"{r.decision_p99_us:.1f} µs | {r.lost_to_placement:.3f} / {r.lost_to_capacity:.3f} |"
        )
    return "\n".join(lines)
