"""`modelyard bench autoscale`: the autoscaling replay (`bench.autoscale`).

Registered under `modelyard bench`; everything it needs is imported inside the
subcommand, so other commands never load the bench (or Ray, which `ray-default` calls).
"""

from __future__ import annotations

import argparse


def add_autoscale(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "autoscale",
        help="replay arrivals against simulated replicas under autoscaling policies",
        description="Replay an Azure trace CSV or a Mooncake JSONL against simulated "
        "replicas (the simulator's timing model), once per autoscaling policy; report SLO "
        "attainment, replica-hours, timeouts, scaling actions and changes of direction.",
    )
    from bench.autoscale.cli import add_arguments

    add_arguments(p)
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from bench.autoscale.cli import run

    code: int = run(args)
    return code
