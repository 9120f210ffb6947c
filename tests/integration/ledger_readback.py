"""The ledger as a crash or outage test reads it back at the end: every usage record, the
reservations still open and the key's row (`settled_ledger`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from cluster.ledger.schema import api_keys, reservations, usage_records


@dataclass
class Settled:
    rows: Sequence[Any]  # (request_id, status, cost_nano) rows
    open_reservations: int
    key: Any  # the api_keys row


def settled_ledger(engine: Engine, key_id: str, timeout_s: float = 15.0) -> Settled:
    """The ledger once no reservation is left (or `timeout_s` passed; 0: as it is now)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with engine.connect() as connection:
            left = connection.execute(select(func.count()).select_from(reservations)).scalar()
            if left == 0 or time.monotonic() >= deadline:
                break
        time.sleep(0.2)
    with engine.connect() as connection:
        rows = connection.execute(
            select(usage_records.c.request_id, usage_records.c.status, usage_records.c.cost_nano)
        ).all()
        left = connection.execute(select(func.count()).select_from(reservations)).scalar()
        key = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
    return Settled(rows, int(left or 0), key)
