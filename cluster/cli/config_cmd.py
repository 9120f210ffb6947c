"""`modelyard config validate FILE`: load a cluster file with every check `up` makes.

Prints the error naming the field and exits 2 when the file is invalid; placement is
checked too (a tensor-parallel group wider than a node is an error here, not a hang later).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster.config.loader import load_config
from cluster.errors import ConfigError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("config", help="work with cluster files")
    sub = parser.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    validate = sub.add_parser("validate", help="validate a cluster file", description=__doc__)
    validate.add_argument("file", type=Path)
    validate.set_defaults(run=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from cluster.placement import plan_for

    try:
        config = load_config(args.file)
        from cluster.config.catalog import load_builtin_catalog

        served = config.served_models(load_builtin_catalog())
        plans = [(model, plan_for(model, config.ray)) for model in served]
    except ConfigError as err:
        print(err.message, file=sys.stderr)
        return 2
    print(f"{args.file}: valid ({len(plans)} model(s))")
    for model, plan in plans:
        print(
            f"  {model.id}: engine={model.deployment.engine} replicas={model.deployment.replicas}"
            f" gpus/replica={plan.gpus} strategy={plan.strategy}"
        )
    return 0
