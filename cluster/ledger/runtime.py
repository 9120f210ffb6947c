"""`open_ledger`: the ledger's object graph for one gateway process, built at start.

    open_ledger(config, environ, owner=...) -> Ledger

opens the database (`database.open_ledger_engine`: URL from the environment or SQLite WAL,
migrations to head), resolves reservations a stopped gateway left open (`recovery`),
starts the group-commit writer, and builds the key store (keys mode) and the queries. The
gateway builds the meter over the writer (`cluster.gateway.service.ledger_meter`).
`Ledger.close()` drains the writer and closes the pool.

The ledger is kept when `auth.mode` is `keys` or the `ledger.url_env` variable is set
(`ledger_enabled`); local development with auth off keeps none unless asked.
`owner` names this gateway in its reservations; recovery by owner is used only with one
gateway replica (a restarted replica must not release a live sibling's reservations);
otherwise reservations older than the request timeout plus a minute are recovered by any
gateway that starts.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from cluster.config.settings import AuthSettings, ClusterConfig
from cluster.errors import ConfigError
from cluster.ledger.database import open_ledger_engine, retrying
from cluster.ledger.keys import KeyStore
from cluster.ledger.queries import LedgerQueries
from cluster.ledger.recovery import RecoveryReport, recover_reservations
from cluster.ledger.writer import GroupCommitWriter

STALE_MARGIN_S = 60.0


def ledger_enabled(config: ClusterConfig, environ: Mapping[str, str]) -> bool:
    return config.auth.mode == "keys" or bool(environ.get(config.ledger.url_env, "").strip())


def key_pepper(settings: AuthSettings, environ: Mapping[str, str]) -> bytes:
    value = environ.get(settings.pepper_env, "")
    if not value:
        raise ConfigError(
            f"auth.pepper_env: set ${settings.pepper_env} to a secret (e.g. 32 random bytes, "
            "hex) before using managed keys",
            param="auth.pepper_env",
        )
    return value.encode("utf-8")


def default_owner(config: ClusterConfig) -> str:
    return f"{socket.gethostname()}/{config.name}/{config.gateway.port}"


@dataclass
class Ledger:
    engine: Engine
    writer: GroupCommitWriter
    owner: str
    queries: LedgerQueries
    keys: KeyStore | None
    recovery: RecoveryReport

    def close(self) -> None:
        self.writer.stop()
        self.engine.dispose()


def open_ledger(
    config: ClusterConfig, environ: Mapping[str, str] | None = None, *, owner: str | None = None
) -> Ledger:
    env = os.environ if environ is None else environ
    keys_mode = config.auth.mode == "keys"
    pepper = key_pepper(config.auth, env) if keys_mode else b""
    engine = open_ledger_engine(config.ledger, env)
    owner = owner or default_owner(config)
    recovery = retrying(
        lambda: recover_reservations(
            engine,
            owner=owner if config.gateway.replicas == 1 else "",
            now=datetime.now(UTC),
            stale_after_s=config.gateway.request_timeout_s + STALE_MARGIN_S,
        ),
        "recovery",
    )
    writer = GroupCommitWriter(engine)
    writer.start()
    store = KeyStore(engine, pepper) if keys_mode else None
    return Ledger(engine, writer, owner, LedgerQueries(engine), store, recovery)
