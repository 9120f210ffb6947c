"""`modelyard bench soak`: the arguments (also `python -m bench.soak`'s); the work is
`bench.soak.run`, imported inside the handler so that no other command loads the benchmark
package, Ray or Locust.

    modelyard bench soak [--duration-s 600] [--rate 8] [--users U] [--speedup 10]
        [--max-tokens 48] [--warmup-share 0.2] [--sample-s 5] [--max-rss-growth 0.1]
        [--rate-tolerance 0.05] [--out DIR] [--plot PNG]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_soak(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "soak",
        help="the real app under Locust at a fixed request rate, memory watched",
        description="Start the local cluster's simulated models and gateway, drive them "
        "with Locust at a fixed rate over streamed and non-streamed requests, and report "
        "throughput, latency percentiles, errors and RSS growth after the warm-up, with a "
        "plot. Exit status 1 when a request failed, the rate was missed or RSS grew too much.",
    )
    add_arguments(p)
    p.set_defaults(run=_run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration-s", type=float, default=600.0)
    p.add_argument("--rate", type=float, default=8.0, help="requests per second (fixed)")
    p.add_argument("--users", type=int, default=0, help="pacing users (default 2 x rate)")
    p.add_argument("--speedup", type=float, default=10.0, help="simulated seconds per second")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--warmup-share", type=float, default=0.2)
    p.add_argument("--sample-s", type=float, default=5.0, help="RSS sampling period")
    p.add_argument("--max-rss-growth", type=float, default=0.10)
    p.add_argument("--rate-tolerance", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=Path(".modelyard/soak"))
    p.add_argument("--plot", type=Path, default=None, help="PNG path (default OUT/soak.png)")


def _run(args: argparse.Namespace) -> int:
    from bench.soak.run import run

    return run(args)
