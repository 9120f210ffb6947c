"""`modelyard bench autoscale`: the arguments; the work is `bench.autoscale.cli`, imported
inside the handler so that no other command loads the benchmark package (or Ray, which
`ray-default` calls).

    modelyard bench autoscale --arrivals FILE [--policy NAME ...] [--startup-s 180]
        [--scale X] [--speedup] [--json] [--plot PNG] [--model ID] [--gpu h100]
        [--min-replicas 1] [--max-replicas 16] [--warmup-s 600] [--timeout-s 60] [--seed 0]
        [--initial-replicas N] [--minutes A-B] [--dispatch prefill-backlog|fewest-ongoing]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_autoscale(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "autoscale",
        help="replay arrivals against simulated replicas under autoscaling policies",
        description="Replay an Azure trace CSV or a Mooncake JSONL against simulated "
        "replicas (the simulator's timing model), once per autoscaling policy; report SLO "
        "attainment, replica-hours, timeouts, scaling actions and changes of direction.",
    )
    add_arguments(p)
    p.set_defaults(run=_run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arrivals", type=Path, required=True, help="Azure 2023 trace CSV or Mooncake JSONL"
    )
    p.add_argument(
        "--policy",
        action="append",
        default=None,
        help="repeatable: modelyard, ray-default, hpa, kpa, saturation, or the yardsticks "
        "fixed:N, clairvoyant:H (default: the first five)",
    )
    p.add_argument(
        "--startup-s",
        type=float,
        default=180.0,
        help="replica start-up time in seconds (weights loading)",
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply the arrival rate")
    p.add_argument(
        "--speedup",
        action="store_true",
        help="coarser replay step (1 s instead of 0.5 s): about twice as fast",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of load vs replicas")
    p.add_argument("--model", default="qwen/qwen3-coder-flash", help="catalog model to simulate")
    p.add_argument("--gpu", default="h100", choices=["h100", "h200", "a100"])
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=16)
    p.add_argument(
        "--warmup-s",
        type=float,
        default=600.0,
        help="seconds replayed but not counted (every policy starts equal)",
    )
    p.add_argument(
        "--timeout-s",
        type=float,
        default=60.0,
        help="a request without a first token after this long gives up",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --scale's copies")
    p.add_argument(  # the rules are bench.autoscale.replay.Dispatch (kept light: no import)
        "--dispatch",
        choices=["prefill-backlog", "fewest-ongoing"],
        default="prefill-backlog",
        help="how the simulated gateway picks a replica: smallest prefill backlog "
        "(modelyard's router) or fewest ongoing requests (join the shortest queue by count)",
    )
    p.add_argument(
        "--initial-replicas",
        type=int,
        default=None,
        help="ready replicas every policy starts with (default: the first two minutes' load / 0.8)",
    )
    p.add_argument(
        "--minutes",
        default=None,
        metavar="A-B",
        help="also print minutes A to B of every replay: load, arrivals, SLO misses, replicas",
    )


def _run(args: argparse.Namespace) -> int:
    from bench.autoscale.cli import run

    code: int = run(args)
    return code
