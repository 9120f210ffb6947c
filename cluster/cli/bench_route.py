"""`modelyard bench route`: the arguments; the work is `bench.route_cmd`, imported inside the
handler so that no other command loads the benchmark package.

    modelyard bench route --trace FILE [--requests N] [--replicas R] [--kv-blocks B]
        [--block-tokens T] [--policy P ...] [--speedup X] [--seed S] [--repeat K]
        [--json] [--plot PNG]
    modelyard bench route --decision-cost [--replicas R] [--prompt-tokens N] [--block-tokens T]
    modelyard bench route --trace FILE --live URL [...]   (through a running server)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cluster.cli.bench_live_args import add_live_arguments


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `bench` with its `route` subcommand."""
    bench = commands.add_parser("bench", help="benchmarks")
    sub = bench.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    add_route(sub)
    from cluster.cli.bench_autoscale import add_autoscale

    add_autoscale(sub)
    from cluster.cli.bench_soak import add_soak

    add_soak(sub)


def add_route(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "route",
        help="replay a trace through routing policies on simulated replicas",
        description="Replay a Mooncake-format trace (timestamp ms, input_length, "
        "output_length, hash_ids) against simulated replicas, once per policy.",
    )
    p.add_argument("--trace", type=Path, help="Mooncake-format JSONL trace")
    p.add_argument("--requests", type=int, default=None, help="first N requests (default all)")
    p.add_argument("--replicas", type=int, default=4)
    p.add_argument("--kv-blocks", type=int, default=4000, help="KV cache blocks per replica")
    p.add_argument(
        "--block-tokens", type=int, default=512, help="tokens per block (512 for Mooncake)"
    )
    p.add_argument(
        "--policy",
        action="append",
        metavar="POLICY",
        help="repeatable: modelyard, prefix-only, round-robin, power-of-two, least-loaded; "
        "default: modelyard and the baselines (baselines always run)",
    )
    p.add_argument("--speedup", type=float, default=1.0, help="trace time compression")
    p.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="SCORER=W",
        help="override a scorer weight of modelyard's router (prefix, queue, kv_usage, session)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeat", type=int, default=1, help="runs per policy; timings are their medians"
    )
    p.add_argument(
        "--model", default="qwen/qwen3-coder-flash", help="catalog model (timing, prices)"
    )
    p.add_argument(
        "--prices",
        default="qwen/qwen3-coder-flash",
        help="catalog model whose price table costs the requests",
    )
    p.add_argument("--gpu", default="h100", choices=["h100", "h200", "a100"])
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--json", action="store_true", help="print machine-readable results")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of hit rate and TTFT")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--decision-cost",
        action="store_true",
        help="instead of a replay: time Router.select for --prompt-tokens among --replicas",
    )
    p.add_argument("--prompt-tokens", type=int, default=32_768)
    p.add_argument("--decisions", type=int, default=5000)
    p.add_argument(
        "--stride", type=int, default=1, help="index every k-th block (IndexSettings.stride)"
    )
    p.add_argument(
        "--holders",
        type=int,
        default=None,
        help="replicas holding prefixes of each prompt (default: all, the worst case)",
    )
    add_live_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the bench (imported here, so the rest of the CLI never loads it)."""
    from bench.route_cmd import run as run_bench_route

    return run_bench_route(args)
