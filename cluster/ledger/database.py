"""Open the ledger's database and bring its schema up to date.

    open_ledger_engine(settings, environ) -> sqlalchemy.Engine

The URL comes from the environment variable `ledger.url_env` names (it may hold a password,
so it is never in the cluster file and never logged); without it, SQLite at
`ledger.sqlite_path` in WAL mode (`synchronous=FULL`: a committed transaction survives a
crash of the process and of the machine); a write waits up to `SQLITE_BUSY_TIMEOUT_MS` for
another writer's lock before it fails (then `cluster.ledger.health` takes over).
`postgresql://` URLs use psycopg 3.
`migrate(engine)` runs the Alembic migrations shipped in `cluster/ledger/migrations` up to
head, inside one transaction, at every start (a no-op when already there).

Several gateway replicas start at once against one database: the first to migrate wins and
the others' attempts fail (a table that now exists, a locked SQLite file). `retrying` runs
such start-up work again after a short back-off; the second attempt finds the work done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from cluster.config.settings import LedgerSettings
from cluster.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 5_000
_RELAXED = "modelyard_relaxed_sync"

_log = logging.getLogger(__name__)


def ledger_url(settings: LedgerSettings, environ: Mapping[str, str]) -> str:
    """The SQLAlchemy URL the settings and environment select (module docstring)."""
    url = environ.get(settings.url_env, "").strip()
    if not url:
        return f"sqlite:///{settings.sqlite_path}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        make_url(url)
    except Exception:
        # The value may hold a password: name the variable, never echo the value.
        raise ConfigError(
            f"ledger.url_env: ${settings.url_env} is not a SQLAlchemy URL",
            param="ledger.url_env",
        ) from None
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _restore_full_sync(dbapi_connection: Any, record: Any) -> None:
    """On check-in: a connection `relax_durability` relaxed is made FULL again."""
    if record.info.pop(_RELAXED, False) and dbapi_connection is not None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()


def relax_durability(connection: Connection) -> bool:
    """SQLite: this transaction commits without an fsync (`synchronous=NORMAL`; the
    connection is FULL again when returned to the pool). True when relaxed.

    Only for a transaction whose loss in a machine crash loses nothing owed (a budget
    reservation): in WAL mode the next FULL commit (the request's record) fsyncs the log up
    to and including it, and a machine crash before that kills the gateway process on the
    same machine with it, so its request never completed (restart recovery has nothing to
    resolve). A process crash loses nothing: the commit is in the OS's cache. Not on
    PostgreSQL, where gateways on other machines outlive a server crash and a lost
    reservation could let them overrun a budget."""
    if connection.dialect.name != "sqlite":
        return False
    proxied = connection.connection
    cursor = proxied.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    proxied.info[_RELAXED] = True
    return True


def create_ledger_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=8, max_overflow=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkin", _restore_full_sync)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


T = TypeVar("T")
START_ATTEMPTS = 6


def retrying(work: Callable[[], T], what: str, attempts: int = START_ATTEMPTS) -> T:
    """`work()`, tried again after 0.1, 0.2, 0.4 ... s when the database refuses it."""
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as err:
            if attempt == attempts - 1:
                raise
            _log.info(
                "ledger %s: attempt %d failed (%s); retrying", what, attempt + 1, type(err).__name__
            )
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def migrate(engine: Engine) -> None:
    """Alembic `upgrade head` over `engine` (idempotent)."""
    config = Config()
    script_location = resources.files("cluster.ledger").joinpath("migrations")
    config.set_main_option("script_location", str(script_location))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_ledger_engine(settings: LedgerSettings, environ: Mapping[str, str]) -> Engine:
    engine = create_ledger_engine(ledger_url(settings, environ))
    retrying(lambda: migrate(engine), "migration")
    return engine
