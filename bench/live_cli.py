"""`modelyard bench route --live URL`: the live mode of the route benchmark.

    modelyard bench route --trace FILE --live http://127.0.0.1:8000 [--requests N]
        [--speedup X] [--sim-speedup S] [--api completions|chat] [--concurrency C]
        [--time-limit SECONDS] [--replica-metrics URL ...] [--label NAME] [--json]
        [--record FILE]

replays the trace through whatever serves at URL (`modelyard up`, a third-party router in
front of `modelyard sim serve` replicas, one replica): HTTP, or gRPC with
`grpc://HOST:PORT`. The API key, if the server wants one, is read from `MODELYARD_API_KEY`.
With `--replica-metrics` (each replica's base URL), per-replica prefill tokens are read
from their /metrics before and after the run. See `bench.live` for the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from bench.live import (
    LiveResult,
    LiveSettings,
    render_live_table,
    replay_live,
    summarise_live,
    with_prefill,
)
from bench.live_metrics import scrape_prefill
from bench.live_record import write_records
from bench.live_targets import make_target
from bench.runner import cost_function
from bench.trace import load_trace
from cluster.config import load_builtin_catalog
from cluster.errors import ConfigError

API_KEY_ENV = "MODELYARD_API_KEY"


def live_settings(args: argparse.Namespace, requests: int) -> LiveSettings:
    if args.concurrency < 1 or args.time_limit <= 0 or args.sim_speedup <= 0:
        raise ConfigError("--concurrency, --time-limit and --sim-speedup must be positive")
    if args.speedup <= 0 or args.block_tokens < 1:
        raise ConfigError("--speedup and --block-tokens must be positive")
    return LiveSettings(
        target=args.live,
        label=args.label or args.live,
        api=args.api,
        model=args.model,
        trace=args.trace.name,
        requests=requests,
        block_tokens=args.block_tokens,
        speedup=args.speedup,
        sim_speedup=args.sim_speedup,
        concurrency=args.concurrency,
        time_limit_s=args.time_limit,
    )


async def live_bench(args: argparse.Namespace) -> LiveResult:
    """Run one live replay as the flags say and summarise it."""
    if args.trace is None:
        raise ConfigError("--trace is required", param="--trace")
    if args.requests is not None and args.requests < 1:
        raise ConfigError("--requests must be >= 1")
    spec = load_builtin_catalog().find(args.model)
    if spec is None:
        raise ConfigError(f"unknown model {args.model!r}", param="--model")
    trace = load_trace(args.trace, args.requests)
    settings = live_settings(args, len(trace))
    cost_of, currency = cost_function(spec)
    try:
        target = make_target(
            args.live,
            model=spec.id,
            api=args.api,
            api_key=os.environ.get(API_KEY_ENV),
            max_connections=args.concurrency,
        )
    except ValueError as err:
        raise ConfigError(str(err), param="--live") from None
    replicas = args.replica_metrics or []
    before = await scrape_prefill(replicas) if replicas else []
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(trace), desc=f"{settings.label:>13}", unit="req", file=sys.stderr)
    try:
        run = await replay_live(trace, target, settings, progress=bar)
    finally:
        await target.aclose()
        if bar is not None:
            bar.close()
    result = summarise_live(run, trace, settings, cost_of, currency)
    if args.record is not None:
        write_records(run, args.record, sim_speedup=settings.sim_speedup)
    if replicas:
        after = await scrape_prefill(replicas)
        result = with_prefill(result, [a - b for a, b in zip(after, before, strict=True)])
    return result


def run_live(args: argparse.Namespace) -> int:
    try:
        result = asyncio.run(live_bench(args))
    except ConfigError as err:
        print(f"modelyard bench route: {err.message}", file=sys.stderr)
        return 2
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        s = result.settings
        print(
            f"trace {s.trace}: {s.requests} requests through {s.target} ({s.api}), "
            f"speedup {s.speedup:g}, replicas' clock x{s.sim_speedup:g}, "
            f"{s.block_tokens}-token blocks rendered as text; wall {result.wall_s:.0f} s"
        )
        print(render_live_table([result]))
        for error in result.errors:
            print(f"error: {error}")
    if getattr(args, "plot", None) is not None:
        print("note: --plot applies to in-process replays only", file=sys.stderr)
    return 0 if result.failed == 0 and result.unfinished == 0 else 1
