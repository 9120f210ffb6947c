"""`modelyard bench route`: replay a Mooncake trace through routing policies (the arguments
are parsed by `cluster.cli.bench_route`, which imports this module inside its handler).

    modelyard bench route --trace FILE [--requests N] [--replicas R] [--kv-blocks B]
        [--block-tokens T] [--policy P ...] [--speedup X] [--seed S] [--repeat K]
        [--json] [--plot PNG]
    modelyard bench route --decision-cost [--replicas R] [--prompt-tokens N] [--block-tokens T]
    modelyard bench route --trace FILE --live URL [...]   (through a running server:
        `bench.live_cli`)

In-process: each policy routes the same trace over R fresh simulated replicas (the
simulator's scheduler and block KV cache for `--model` on `--gpu`, on a virtual clock),
fast and deterministic. This module builds the bench's objects: it imports
`deployments.engines.sim` inside the command (never Ray or vLLM), so `modelyard` itself
starts without them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bench.policies import BASELINES, POLICIES
from bench.replay import Progress, ReplicaFactory, StepReport
from cluster.config.catalog import ModelSpec
from cluster.errors import ConfigError

if TYPE_CHECKING:
    from bench.runner import ProgressFactory
    from cluster.engine import KVEvent
    from deployments.engines.sim.scheduler import Scheduler


DEFAULT_POLICIES = ("modelyard", *BASELINES)


class _SchedulerReplica:
    """The simulator's `Scheduler` + `BlockKVCache` as the replay's `SimReplica`."""

    def __init__(self, scheduler: Scheduler, events: list[KVEvent]) -> None:
        self._scheduler = scheduler
        self._cache = scheduler.cache
        self._events = events

    def submit(
        self, seq_id: str, prompt_tokens: int, output_tokens: int, block_hashes: Sequence[int]
    ) -> None:
        from deployments.engines.sim.scheduler import SimSequence

        self._scheduler.add(SimSequence(seq_id, prompt_tokens, output_tokens, block_hashes))

    def cached_prefix_tokens(self, block_hashes: Sequence[int], prompt_tokens: int) -> int:
        bs = self._cache.block_size
        return min(self._cache.lookup(block_hashes), (prompt_tokens - 1) // bs) * bs

    def step(self) -> StepReport:
        result = self._scheduler.step()
        events = list(self._events)
        self._events.clear()
        return StepReport(
            duration_s=result.duration_s,
            admitted=[(a.seq_id, a.cached_tokens, a.resumed) for a in result.admitted],
            emitted=list(result.emitted),
            finished=result.finished,
            preempted=result.preempted,
            events=events,
        )

    @property
    def has_work(self) -> bool:
        return self._scheduler.has_work

    @property
    def running(self) -> int:
        return self._scheduler.num_running

    @property
    def waiting(self) -> int:
        return self._scheduler.num_waiting

    @property
    def kv_usage(self) -> float:
        return self._cache.usage


def sim_factory(
    spec: ModelSpec,
    *,
    gpu: str = "h100",
    kv_blocks: int,
    block_tokens: int,
    max_num_seqs: int = 256,
    max_num_batched_tokens: int = 8192,
    seed: int = 0,
) -> ReplicaFactory:
    """Fresh simulated replicas of `spec` on `gpu` (`Scheduler.for_model`)."""
    from cluster.config import SimSettings
    from deployments.engines.sim.scheduler import Scheduler

    settings = SimSettings.model_validate(
        {
            "gpu": gpu,
            "kv_blocks": kv_blocks,
            "block_size": block_tokens,
            "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_num_batched_tokens,
            "seed": seed,
        }
    )

    def factory(replica_id: str) -> _SchedulerReplica:
        events: list[KVEvent] = []
        scheduler = Scheduler.for_model(spec, settings, on_events=events.extend)
        return _SchedulerReplica(scheduler, events)

    return factory


def _weights(items: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--weight {item!r}: expected SCORER=NUMBER", param="--weight")
    return out


def _find_model(name: str, option: str) -> ModelSpec:
    from cluster.config import load_builtin_catalog

    spec = load_builtin_catalog().find(name)
    if spec is None:
        raise ConfigError(f"{option}: unknown model {name!r}", param=option)
    return spec


def _progress(enabled: bool) -> ProgressFactory | None:
    if not enabled:
        return None
    from tqdm import tqdm

    def make(name: str, total: int) -> Progress:
        bar: Progress = tqdm(total=total, desc=f"{name:>13}", unit="req", file=sys.stderr)
        return bar

    return make


def run(args: argparse.Namespace) -> int:
    if args.live is not None:  # through a running server: bench.live_cli
        from bench.live_cli import run_live

        return run_live(args)
    try:
        if args.decision_cost:
            return _run_decision_cost(args)
        return _run_replay(args)
    except ConfigError as err:
        print(f"modelyard bench route: {err.message}", file=sys.stderr)
        return 2


def _check(args: argparse.Namespace) -> None:
    for name in ("replicas", "kv_blocks", "block_tokens", "max_num_seqs", "max_num_batched_tokens"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    if args.speedup <= 0:
        raise ConfigError("--speedup must be > 0")
    if args.requests is not None and args.requests < 1:
        raise ConfigError("--requests must be >= 1")
    for name in args.policy or ():
        if name not in POLICIES:
            raise ConfigError(
                f"unknown --policy {name!r}; choose from {', '.join(POLICIES)}", param="--policy"
            )


def _run_replay(args: argparse.Namespace) -> int:
    from bench.report import BenchSettings, render_table
    from bench.runner import run_bench
    from bench.trace import load_trace

    if args.trace is None:
        raise ConfigError("--trace is required", param="--trace")
    _check(args)
    policies = list(dict.fromkeys([*(args.policy or ["modelyard"]), *BASELINES]))
    trace = load_trace(args.trace, args.requests)
    spec = _find_model(args.model, "--model")
    price_spec = _find_model(args.prices, "--prices")
    factory = sim_factory(
        spec,
        gpu=args.gpu,
        kv_blocks=args.kv_blocks,
        block_tokens=args.block_tokens,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        seed=args.seed,
    )
    settings = BenchSettings(
        trace=args.trace.name,
        requests=len(trace),
        replicas=args.replicas,
        kv_blocks=args.kv_blocks,
        block_tokens=args.block_tokens,
        speedup=args.speedup,
        seed=args.seed,
        model=spec.id,
        gpu=args.gpu,
        prices=price_spec.id,
    )
    progress = _progress(not args.no_progress)
    weights = _weights(args.weight)
    result = run_bench(
        trace,
        settings,
        policies,
        factory,
        price_spec,
        progress,
        args.repeat,
        weights,
        prefix_caching=spec.prefix_caching,
    )
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render_table(result))
    if args.plot is not None:
        from bench.plot import plot_results

        plot_results(result, args.plot)
        if not args.json:
            print(f"\nplot written to {args.plot}")
    return 0


def _run_decision_cost(args: argparse.Namespace) -> int:
    from bench.decision_cost import measure_decision_cost

    if min(args.replicas, args.prompt_tokens, args.decisions, args.stride) < 1:
        raise ConfigError("--replicas, --prompt-tokens, --decisions and --stride must be >= 1")
    result = measure_decision_cost(
        replicas=args.replicas,
        prompt_tokens=args.prompt_tokens,
        block_tokens=args.block_tokens,
        decisions=args.decisions,
        holders=args.holders,
        stride=args.stride,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Router.select, {args.prompt_tokens}-token prompts ({result['prompt_blocks']} "
            f"blocks of {args.block_tokens}) among {args.replicas} replicas "
            f"({result['holders']:.0f} holding prefixes of it), index stride "
            f"{result['stride']:.0f}, "
            f"{result['indexed_blocks']} blocks indexed, {args.decisions} decisions: "
            f"wall p50 {result['p50_us']:.1f} µs, p99 {result['p99_us']:.1f} µs, "
            f"max {result['max_us']:.1f} µs; thread CPU p50 {result['cpu_p50_us']:.1f} µs, "
            f"p99 {result['cpu_p99_us']:.1f} µs"
        )
    return 0
