"""Restart recovery: reservations a killed gateway left open are resolved at start.

A reservation is stale when its owner is this gateway (a previous incarnation with the same
identity) or when it is older than `stale_after_s` (longer than any request may run). For
each stale one, in one transaction:
- the request already has its record (written with the settlement, so this only happens if
  a settlement was interrupted half way, which the transaction rules out): the reservation
  is dropped — counted `settled`;
- otherwise the request never finished: a `failed` record with no tokens and no cost is
  written (the client never received a complete answer) and the reservation is released —
  counted `released`.
The counts are returned and logged in one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select

from cluster.ledger import operations
from cluster.ledger.records import UsageRecord, utc
from cluster.ledger.schema import reservations, usage_records

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    settled: int
    released: int

    @property
    def total(self) -> int:
        return self.settled + self.released


def recover_reservations(
    engine: Engine, *, owner: str, now: datetime, stale_after_s: float
) -> RecoveryReport:
    cutoff = now - timedelta(seconds=stale_after_s)
    r = reservations.c
    settled = released = 0
    with engine.begin() as connection:
        stale = connection.execute(
            select(r.request_id, r.key_id, r.model, r.created_at).where(
                or_(r.owner == owner, r.created_at < cutoff)
            )
        ).all()
        for row in stale:
            recorded = connection.execute(
                select(usage_records.c.request_id).where(
                    usage_records.c.request_id == row.request_id
                )
            ).first()
            if recorded is not None:
                operations.Release(row.request_id)(connection)
                settled += 1
                continue
            record = UsageRecord(
                request_id=row.request_id,
                key_id=row.key_id,
                model=row.model,
                prompt_tokens=0,
                cached_tokens=0,
                completion_tokens=0,
                tier=None,
                currency=None,
                cost=None,
                status="failed",
                started_at=utc(row.created_at),
                ended_at=now,
            )
            operations.Settle(record)(connection)
            released += 1
    report = RecoveryReport(settled=settled, released=released)
    if report.total:
        _log.warning(
            "ledger recovery: %d open reservation(s) of a stopped gateway resolved "
            "(%d settled, %d released)",
            report.total,
            settled,
            released,
        )
    else:
        _log.info("ledger recovery: no open reservations to resolve")
    return report
