"""Run every requested policy over the same trace and summarise: `modelyard bench route`.

The caller (the CLI, the composition root) supplies the replica factory, so this package
never imports the simulator itself, and a progress factory (tqdm in the CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from cluster.bench.bounds import infinite_cache_hit_rate, pooled_lru_hit_rate
from cluster.bench.policies import make_policy
from cluster.bench.replay import Progress, ReplicaFactory, replay
from cluster.bench.report import (
    BenchResult,
    BenchSettings,
    PolicyResult,
    add_savings,
    summarise,
)
from cluster.bench.trace import TraceRequest
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
        raise ConfigError(f"{spec.id} has no price table; cost cannot be reported", param="--model")

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
    spec: ModelSpec,
    progress: ProgressFactory | None = None,
) -> BenchResult:
    cost, currency = cost_function(spec)
    results: list[PolicyResult] = []
    for name in policies:
        policy = make_policy(name, block_tokens=settings.block_tokens, seed=settings.seed)
        bar = progress(name, len(trace)) if progress is not None else None
        run = replay(
            trace,
            policy,
            factory,
            replicas=settings.replicas,
            block_tokens=settings.block_tokens,
            speedup=settings.speedup,
            progress=bar,
        )
        close = getattr(bar, "close", None)
        if callable(close):
            close()
        results.append(summarise(run, cost))
    return BenchResult(
        settings=settings,
        infinite_cache_hit_rate=infinite_cache_hit_rate(trace, settings.block_tokens),
        pooled_lru_hit_rate=pooled_lru_hit_rate(
            trace, settings.block_tokens, settings.replicas * settings.kv_blocks
        ),
        currency=currency,
        results=add_savings(results),
    )
