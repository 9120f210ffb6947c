"""`modelyard models list`: the model catalog as a table."""

from __future__ import annotations

import argparse
from pathlib import Path

from cluster.cli import models_prepare
from cluster.config.catalog import Catalog, ModelSpec, load_builtin_catalog


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("models", help="the model catalog")
    sub = parser.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="list catalog models")
    listing.add_argument(
        "--config", type=Path, default=None, help="also include the file's catalog additions"
    )
    listing.set_defaults(run=run_list)
    models_prepare.register(sub)


def _row(spec: ModelSpec) -> list[str]:
    par = spec.parallelism
    layout = f"TP{par.tensor}" + (f"xPP{par.pipeline}" if par.pipeline > 1 else "")
    layout += "+EP" if par.expert else ""
    params = (
        f"{spec.params_b:g}B"
        if spec.active_params_b == spec.params_b
        else f"{spec.params_b:g}B ({spec.active_params_b:g}B act.)"
    )
    return [
        spec.id,
        params,
        f"{spec.context_window:,}",
        f"{layout} = {par.gpus} GPU",
        "yes" if spec.prefix_caching else "no",
        ", ".join(spec.aliases) or "-",
    ]


def render_table(catalog: Catalog) -> str:
    header = ["ID", "PARAMS", "CONTEXT", "PARALLELISM", "PREFIX CACHE", "ALIASES"]
    rows = [header, *(_row(spec) for spec in catalog.models)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run_list(args: argparse.Namespace) -> int:
    catalog = load_builtin_catalog()
    if args.config is not None:
        from cluster.config.loader import load_config
        from cluster.errors import ConfigError

        try:
            catalog = catalog.merged(load_config(args.config).catalog)
        except ConfigError as err:
            print(err.message)
            return 2
    print(render_table(catalog))
    return 0
