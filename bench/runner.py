"""Run every requested policy over the same trace and summarise: `modelyard bench route`.

The caller (the CLI, the composition root) supplies the replica factory, so this package
never imports the simulator itself, and a progress factory (tqdm in the CLI).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal

from bench.bounds import (
    infinite_cache_hits,
    pooled_belady_hit_rate,
    pooled_lru_hit_rate,
)
from bench.policies import make_policy
from bench.replay import Progress, ReplicaFactory, replay
from bench.report import (
    BenchResult,
    BenchSettings,
    PolicyResult,
    add_savings,
    summarise,
)
from bench.trace import TraceRequest
from cluster.config.catalog import ModelSpec
from cluster.config.settings import ModelDeployment, ServedModel
from cluster.engine import Usage
from cluster.errors import ConfigError
from cluster.pricing import PriceBook

ProgressFactory = Callable[[str, int], Progress]


def cost_function(spec: ModelSpec) -> tuple[Callable[[Usage], Decimal], str]:
    """Cost of one request at the model's catalog prices (`PriceBook`), and the currency."""
    book = PriceBook([ServedModel(spec=spec, deployment=ModelDeployment(id=spec.id))])
    table = book.table(spec.id)
    if table is None:
        raise ConfigError(
            f"{spec.id} has no price table; cost cannot be reported", param="--prices"
        )

    def cost(usage: Usage) -> Decimal:
        quote = book.cost(spec.id, usage)
        assert quote is not None
        return quote.total

    return cost, table.currency


def run_bench(
    trace: Sequence[TraceRequest],
    settings: BenchSettings,
    policies: Sequence[str],
    factory: ReplicaFactory,
    price_spec: ModelSpec,
    progress: ProgressFactory | None = None,
    repeats: int = 1,
    weights: Mapping[str, float] | None = None,
    prefix_caching: bool = True,
) -> BenchResult:
    """Replay every policy `repeats` times; simulated results must agree across repeats
    (the replay is deterministic), timings are the medians."""
    if repeats < 1:
        raise ConfigError("--repeat must be >= 1", param="--repeat")
    cost, currency = cost_function(price_spec)
    infinite = infinite_cache_hits(trace, settings.block_tokens)
    results: list[PolicyResult] = []
    for name in policies:
        runs: list[PolicyResult] = []
        for k in range(repeats):
            policy = make_policy(
                name, block_tokens=settings.block_tokens, seed=settings.seed, weights=weights
            )
            label = name if repeats == 1 else f"{name} {k + 1}/{repeats}"
            bar = progress(label, len(trace)) if progress is not None else None
            run = replay(
                trace,
                policy,
                factory,
                replicas=settings.replicas,
                block_tokens=settings.block_tokens,
                speedup=settings.speedup,
                progress=bar,
                prefix_caching=prefix_caching,
            )
            close = getattr(bar, "close", None)
            if callable(close):
                close()
            runs.append(summarise(run, cost, infinite))
        results.append(_median_timings(runs))
    return BenchResult(
        settings=settings,
        infinite_cache_hit_rate=sum(infinite.values()) / sum(r.input_length for r in trace),
        pooled_lru_hit_rate=pooled_lru_hit_rate(
            trace, settings.block_tokens, settings.replicas * settings.kv_blocks
        ),
        pooled_belady_hit_rate=pooled_belady_hit_rate(
            trace, settings.block_tokens, settings.replicas * settings.kv_blocks
        ),
        currency=currency,
        weights=dict(weights or {}),
        results=add_savings(results),
        repeats=repeats,
    )


_TIMINGS = ("decisions_per_s", "decision_p50_us", "decision_p99_us")


def _median_timings(runs: Sequence[PolicyResult]) -> PolicyResult:
    first = runs[0]
    simulated = first.model_dump(exclude=set(_TIMINGS))
    for other in runs[1:]:
        if other.model_dump(exclude=set(_TIMINGS)) != simulated:
            raise RuntimeError(
                f"{first.policy}: repeated replays differ; the replay must be deterministic"
            )
    return first.model_copy(
        update={key: statistics.median(getattr(r, key) for r in runs) for key in _TIMINGS}
    )
