"""`modelyard usage [--from DATE] [--to DATE] [--group-by model|key|day] [--key ID]`:
ledger totals (requests, tokens, cost) of records ended in [from, to), straight from the
ledger's database (`cluster.ledger.queries`).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal

from cluster.cli.ledger_access import add_config_argument, iso_date, load
from cluster.errors import ConfigError
from cluster.ledger.queries import LedgerQueries


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("usage", help="usage totals from the ledger", description=__doc__)
    parser.add_argument("--from", dest="start", type=iso_date, default=None)
    parser.add_argument("--to", dest="end", type=iso_date, default=None)
    parser.add_argument("--group-by", choices=["model", "key", "day"], default="model")
    parser.add_argument("--key", default=None, help="only this key's records")
    add_config_argument(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        _config, engine = load(args)
    except ConfigError as err:
        print(f"modelyard usage: {err.message}", file=sys.stderr)
        return 2
    try:
        rows = LedgerQueries(engine).usage(
            args.group_by, start=args.start, end=args.end, key_id=args.key
        )
    finally:
        engine.dispose()
    print(f"{args.group_by:<40} {'requests':>9} {'prompt':>10} {'cached':>10} {'output':>10} cost")
    for row in rows:
        print(
            f"{row.group or '-':<40} {row.requests:>9} {row.prompt_tokens:>10} "
            f"{row.cached_tokens:>10} {row.completion_tokens:>10} {row.cost}"
        )
    total = sum((row.cost for row in rows), Decimal(0))
    print(f"{'total':<40} {sum(r.requests for r in rows):>9} {'':>10} {'':>10} {'':>10} {total}")
    return 0
