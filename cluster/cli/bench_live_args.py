"""The flags of `modelyard bench route --live URL` (argparse only, so adding them to the
parser costs nothing at startup; the replay itself is `bench.live_cli.run_live`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_live_arguments(p: argparse.ArgumentParser) -> None:
    live = p.add_argument_group("live replay (--live)")
    live.add_argument(
        "--live",
        metavar="URL",
        default=None,
        help="replay through a running server (http://HOST:PORT or grpc://HOST:PORT)",
    )
    live.add_argument("--api", choices=["completions", "chat"], default="completions")
    live.add_argument("--concurrency", type=int, default=512, help="requests in flight (512)")
    live.add_argument(
        "--time-limit", type=float, default=900.0, help="wall seconds for the whole run (900)"
    )
    live.add_argument(
        "--sim-speedup",
        type=float,
        default=1.0,
        help="the replicas' simulated seconds per wall second (their --speedup; 1)",
    )
    live.add_argument(
        "--replica-metrics",
        metavar="URL",
        action="append",
        default=None,
        help="a replica's base URL, for per-replica prefill from its /metrics (repeatable)",
    )
    live.add_argument("--label", default=None, help="name of this run in the report")
    live.add_argument(
        "--record",
        type=Path,
        default=None,
        help="write one JSON line per request (TTFT, usage, error) to this file",
    )
