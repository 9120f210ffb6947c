"""Entry point of the `modelyard` command (`cluster.cli.main:main`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cluster.cli import bench_route, config_cmd, keys_cmd, models_cmd, sim_serve, up, usage_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard",
        description="Run LLMs as a cluster: Ray Serve + vLLM (or the simulator), "
        "prefix-cache-aware routing, OpenAI and gRPC APIs.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.register(commands)
    config_cmd.register(commands)
    models_cmd.register(commands)
    bench_route.register(commands)
    sim_serve.register(commands)
    keys_cmd.register(commands)
    usage_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
