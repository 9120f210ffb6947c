"""`modelyard models prepare <id>`: build a local model into the model cache, once.

Exit codes: 0 prepared (or already prepared), 2 unknown model or missing source.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cluster.errors import ConfigError
from cluster.models.cache import ENV_VAR, ModelCache
from cluster.models.prepare import prepare_model
from cluster.models.recipes import default_recipes


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    known = ", ".join(r.model_id for r in default_recipes())
    parser = sub.add_parser(
        "prepare",
        help=f"build a local model into the model cache ({known})",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", help=f"model id ({known})")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"model cache folder (default: ${ENV_VAR} or ~/.cache/modelyard/models)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if prepared")
    parser.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    cache = ModelCache(args.cache) if args.cache else ModelCache.from_env(os.environ)
    try:
        result = prepare_model(args.model, cache=cache, recipes=default_recipes(), force=args.force)
    except ConfigError as err:
        print(f"modelyard models prepare: {err.message}")
        return 2
    if result.already_prepared:
        print(f"{result.model_id}: already prepared at {result.path}")
    else:
        print(f"{result.model_id}: prepared at {result.path} in {result.seconds:.1f}s")
    return 0
