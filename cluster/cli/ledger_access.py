"""What `modelyard keys` and `modelyard usage` share: the cluster file and its ledger.

Both read the same cluster file `modelyard up` serves (`--config`, default the packaged
local.yaml) and open the ledger it names (`ledger.url_env` / `ledger.sqlite_path`), bringing
its schema up to date; `keys` also needs the pepper (`auth.pepper_env`).
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from cluster.config.loader import default_config_path, load_config
from cluster.config.settings import ClusterConfig
from cluster.ledger.database import open_ledger_engine


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="cluster file (default: the packaged one)"
    )


def load(args: argparse.Namespace) -> tuple[ClusterConfig, Engine]:
    config = load_config(args.config or default_config_path())
    return config, open_ledger_engine(config.ledger, os.environ)


def iso_date(text: str) -> datetime:
    """An ISO date or date-time argument, as UTC (no zone given: UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
