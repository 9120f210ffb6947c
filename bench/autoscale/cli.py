"""`modelyard bench autoscale`: the run (its arguments are `cluster.cli.bench_autoscale`,
which imports this inside the handler).

    modelyard bench autoscale --arrivals FILE [--policy NAME ...] [--startup-s 180]
        [--scale X] [--speedup] [--json] [--plot PNG] [--model ID] [--gpu h100]
        [--min-replicas 1] [--max-replicas 16] [--warmup-s 600] [--seed 0]
        [--initial-replicas N] [--minutes A-B]

Policies: modelyard, ray-default, hpa, kpa, saturation (default: all five), and
`fixed:N` and `clairvoyant:H` (`bench.autoscale.clairvoyant`) as yardsticks. Progress
goes to stderr; the table (or JSON) to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.autoscale.observation import POLICY_NAMES


def run(args: argparse.Namespace) -> int:
    from bench.autoscale.arrivals import load_arrivals, scale
    from bench.autoscale.demand import demand_series, initial_replicas
    from bench.autoscale.replay import ReplayConfig, replay
    from bench.autoscale.report import render, summarize
    from bench.autoscale.run import build_policy, modelyard_settings, replica_shape
    from cluster.errors import ConfigError

    try:
        arrivals = scale(load_arrivals(args.arrivals), args.scale, seed=args.seed)
        shape = replica_shape(args.model, args.gpu)
        demand = demand_series(arrivals, shape, ReplayConfig().tpot_slo_s)
        names = args.policy or list(POLICY_NAMES)
        policies = [
            build_policy(
                n,
                min_replicas=args.min_replicas,
                max_replicas=args.max_replicas,
                settings=modelyard_settings(shape, args.startup_s),
                load_series=demand,
                startup_s=args.startup_s,
            )
            for n in names
        ]
    except ConfigError as err:
        print(f"modelyard bench autoscale: {err.message}", file=sys.stderr)
        return 2
    cfg = ReplayConfig(
        dt=1.0 if args.speedup else 0.5,
        startup_s=args.startup_s,
        timeout_s=args.timeout_s,
        initial_replicas=(
            initial_replicas(demand) if args.initial_replicas is None else args.initial_replicas
        ),
        warmup_s=args.warmup_s,
        dispatch=args.dispatch,
    )
    peak = max((v for _, v in demand), default=0.0)
    print(
        f"{len(arrivals)} requests over {arrivals[-1].at_s / 60:.1f} min (x{args.scale}), "
        f"{args.model} on {args.gpu}; load peak {peak:.1f} replicas of work; "
        f"every policy starts with {cfg.initial_replicas} ready; dispatch {cfg.dispatch}",
        file=sys.stderr,
    )
    results = []
    for policy in policies:
        started = time.monotonic()

        def progress(done: float, name: str = policy.name) -> None:
            print(f"\r  {name:<12} {100 * done:5.1f} %", end="", file=sys.stderr, flush=True)

        tty = sys.stderr.isatty()
        if not tty:
            print(f"  {policy.name:<12} replaying...", file=sys.stderr, flush=True)
        result = replay(arrivals, policy, shape, cfg, progress=progress if tty else None)
        report = summarize(result, cfg)
        print(
            f"\r  {policy.name:<12} done in {time.monotonic() - started:.1f} s: "
            f"SLO {100 * report.attainment:.1f} %, {report.replica_hours:.2f} replica-h",
            file=sys.stderr,
        )
        results.append((result, report))
    reports = [r for _, r in results]
    if args.json:
        print(
            json.dumps(
                {
                    "arrivals": str(args.arrivals),
                    "scale": args.scale,
                    "model": args.model,
                    "gpu": args.gpu,
                    "startup_s": args.startup_s,
                    "warmup_s": args.warmup_s,
                    "initial_replicas": cfg.initial_replicas,
                    "dispatch": cfg.dispatch,
                    "load_peak_replicas": round(peak, 2),
                    "policies": [r.as_dict() for r in reports],
                },
                indent=2,
            )
        )
    else:
        print(render(reports))
    if args.minutes is not None:
        from bench.autoscale.report import per_minute

        first, _, last = args.minutes.partition("-")
        for result, _ in results:
            print(per_minute(result, cfg, demand, int(first), int(last or first)))
    if args.plot is not None:
        from bench.autoscale.plot import plot_replay

        title = (
            f"{args.arrivals.name} x{args.scale}, {args.model} on {args.gpu}, "
            f"start-up {args.startup_s:.0f} s"
        )
        plot_replay(demand, results, args.plot, title, cfg.warmup_s)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0
