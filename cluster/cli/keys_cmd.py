"""`modelyard keys create|list|show|revoke|rotate`: managed API keys in the ledger.

    modelyard keys create --name NAME [--budget-rub X] [--rpm N] [--tpm N]
                          [--models ID ...] [--expires DATE]
    modelyard keys list | show ID | revoke ID | rotate ID

`create` and `rotate` print the key once, on stdout, alone on its line; only its peppered
hash is stored (`cluster.ledger.keys`). Needs the pepper in `$MODELYARD_KEY_PEPPER` (or the
variable `auth.pepper_env` names), the same the gateway reads. Exit 2 on bad input, 1 when
the key does not exist.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from cluster.cli.ledger_access import add_config_argument, iso_date, load
from cluster.errors import ConfigError
from cluster.ledger.keys import KeyInfo, KeyStore
from cluster.ledger.runtime import key_pepper


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "keys",
        help="managed API keys (budgets, rates, models)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--budget-rub", type=_money, default=None, help="budget in roubles")
    create.add_argument("--rpm", type=_positive, default=None, help="requests per minute")
    create.add_argument("--tpm", type=_positive, default=None, help="tokens per minute")
    create.add_argument("--models", nargs="+", default=None, metavar="ID", help="allowed models")
    create.add_argument("--expires", type=iso_date, default=None, help="ISO date or date-time")
    sub.add_parser("list", help="every key (never the keys themselves)")
    for name, summary in (
        ("show", "one key"),
        ("revoke", "stop a key at once"),
        ("rotate", "a new secret for a key (limits and spend kept); prints it once"),
    ):
        sub.add_parser(name, help=summary).add_argument("id")
    for command in sub.choices.values():
        add_config_argument(command)
        command.set_defaults(run=run)


def _money(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount") from None
    if value < 0 or value != value.quantize(Decimal("0.000000001")):
        raise argparse.ArgumentTypeError("the budget must be >= 0 with at most 9 decimals")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def describe(info: KeyInfo) -> str:
    budget = "no budget" if info.budget is None else f"budget {info.budget} RUB"
    state = "revoked" if info.revoked_at else "active"
    if info.expires_at is not None:
        state += f", expires {info.expires_at.isoformat()}"
    rates = ", ".join(
        f"{n} {name}" for name, n in (("rpm", info.rpm), ("tpm", info.tpm)) if n is not None
    )
    models = "every model" if info.models is None else " ".join(info.models)
    return (
        f"{info.id}  {info.name!r}  {state}; {budget}, spent {info.spent}, reserved "
        f"{info.reserved}; {rates or 'no rate limits'}; {models}"
    )


def run(args: argparse.Namespace) -> int:
    try:
        config, engine = load(args)
        store = KeyStore(engine, key_pepper(config.auth, os.environ))
    except ConfigError as err:
        print(f"modelyard keys: {err.message}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, store)
    finally:
        engine.dispose()


def _dispatch(args: argparse.Namespace, store: KeyStore) -> int:
    now = datetime.now(UTC)
    command = args.keys_command
    if command == "create":
        key, info = store.create(
            args.name,
            now=now,
            budget=args.budget_rub,
            rpm=args.rpm,
            tpm=args.tpm,
            models=args.models,
            expires_at=args.expires,
        )
        print(describe(info), file=sys.stderr)
        print("the key (shown once; store it now):", file=sys.stderr)
        print(key)
        return 0
    if command == "list":
        for info in store.list():
            print(describe(info))
        return 0
    if command == "show":
        shown = store.show(args.id)
        if shown is None:
            print(f"modelyard keys: no key {args.id}", file=sys.stderr)
            return 1
        print(describe(shown))
        return 0
    if command == "revoke":
        if not store.revoke(args.id, now):
            print(f"modelyard keys: no active key {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
        return 0
    rotated = store.rotate(args.id)
    if rotated is None:
        print(f"modelyard keys: no active key {args.id}", file=sys.stderr)
        return 1
    print(f"rotated {args.id}; the new key (shown once):", file=sys.stderr)
    print(rotated)
    return 0
