"""`modelyard up --auth off|keys`: the mode applied to the config, and the line that says it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cluster.config.settings import ClusterConfig
from cluster.ledger.runtime import key_pepper


def with_auth(config: ClusterConfig, mode: str | None, environ: Mapping[str, str]) -> ClusterConfig:
    """`mode` applied (None: the file's), the SQLite ledger path made absolute, and in keys
    mode the pepper checked now rather than in every gateway replica."""
    auth = config.auth if mode is None else config.auth.model_copy(update={"mode": mode})
    ledger = config.ledger.model_copy(
        update={"sqlite_path": Path(config.ledger.sqlite_path).resolve()}
    )
    if auth.mode == "keys":
        key_pepper(auth, environ)  # raises ConfigError naming the variable
    return config.model_copy(update={"auth": auth, "ledger": ledger})


def auth_line(config: ClusterConfig) -> str:
    auth = config.auth
    if auth.mode == "keys":
        return (
            f"authentication: keys (managed keys in the ledger; create one with "
            f"`modelyard keys create --name NAME`; ledger: {_where(config)})"
        )
    if auth.api_key_sha256 or auth.api_keys_file:
        return "authentication: static key digests (auth.api_key_sha256 / auth.api_keys_file)"
    return (
        "authentication: OFF (local mode: every caller is accepted); "
        "`modelyard up --auth keys` turns managed keys on"
    )


def _where(config: ClusterConfig) -> str:
    return f"${config.ledger.url_env} if set, else {config.ledger.sqlite_path}"
