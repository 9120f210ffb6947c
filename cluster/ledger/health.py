"""`LedgerHealth`: whether the ledger's database takes writes now, as the writer last saw it.

    health.available            # False from the first failed commit until a probe succeeds
    health.check()              # raises LedgerUnavailable (503, Retry-After) while down
    health.state()              # "ok" | "unavailable", for /health

The group-commit writer marks the database down when a transaction fails for a reason of
the database's own (`is_outage`: the server unreachable or gone, the file locked past the
busy timeout, a dropped connection) and a probe confirms it, and up when a probe or a
commit succeeds (it probes every `PROBE_INTERVAL_S` while down). While down the gateway
refuses new requests at once with `LedgerUnavailable` and `Retry-After: RETRY_AFTER_S`
instead of dispatching work it could not bill; it resumes by itself with the first
successful probe. `unavailable_on_outage` translates a database outage raised by a read
(key lookup, usage queries) into the same typed error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from cluster.errors import LedgerUnavailable
from cluster.ledger.database import SQLITE_BUSY_TIMEOUT_MS

PROBE_INTERVAL_S = 0.5
RETRY_AFTER_S = 1
PROBE_BUSY_TIMEOUT_MS = 250  # SQLite: how long a probe waits for another writer's lock

# A write that needs the database's write lock and changes nothing (SQLite: fails while
# another process holds the lock; PostgreSQL: needs a live connection).
PROBE = text("UPDATE api_keys SET spent_nano = spent_nano WHERE 1 = 0")


def probe(connection: Connection) -> None:
    """The probe write, in `connection`'s transaction; on SQLite it waits at most
    `PROBE_BUSY_TIMEOUT_MS` for the lock (an outage is not confirmed twice as slowly)."""
    if connection.dialect.name != "sqlite":
        connection.execute(PROBE)
        return
    connection.exec_driver_sql(f"PRAGMA busy_timeout={PROBE_BUSY_TIMEOUT_MS}")
    try:
        connection.execute(PROBE)
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def is_outage(err: BaseException) -> bool:
    """Whether `err` may be the database being unavailable (not a bad statement)."""
    if isinstance(err, DBAPIError) and err.connection_invalidated:
        return True
    return isinstance(err, OperationalError | InterfaceError)


def refusal(cause: str) -> LedgerUnavailable:
    return LedgerUnavailable(
        f"The usage ledger's database is unavailable ({cause}); requests cannot be billed "
        f"and are refused until it returns. Retry after {RETRY_AFTER_S} s.",
        retry_after_s=RETRY_AFTER_S,
    )


def describe(err: BaseException) -> str:
    """A short cause for messages and logs: the driver's error class, never its text (which
    may hold a connection string)."""
    inner = getattr(err, "orig", None)
    return type(inner if inner is not None else err).__name__


class LedgerHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._cause = ""
        self.outages = 0
        self.last_outage_s: float | None = None  # how long the last finished outage lasted

    @property
    def available(self) -> bool:
        return self._down_since is None

    def state(self) -> str:
        return "ok" if self.available else "unavailable"

    def mark_down(self, cause: str) -> bool:
        """True when this starts an outage."""
        with self._lock:
            self._cause = cause
            if self._down_since is not None:
                return False
            self._down_since = self._clock()
            self.outages += 1
            return True

    def mark_up(self) -> float | None:
        """The outage's length in seconds when this ends one, else None."""
        with self._lock:
            if self._down_since is None:
                return None
            self.last_outage_s = self._clock() - self._down_since
            self._down_since = None
            return self.last_outage_s

    def check(self) -> None:
        if self._down_since is not None:
            raise refusal(self._cause)


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Re-raise a database outage from the block as `LedgerUnavailable` (503)."""
    try:
        yield
    except DBAPIError as err:
        if not is_outage(err):
            raise
        raise refusal(describe(err)) from None
