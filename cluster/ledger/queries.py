"""Reading the ledger: one request's record, and usage totals grouped by model, key or day.

Totals are summed in SQL over integer nano-units (exact), then turned into `Decimal`.
Grouping by day uses the UTC date of `ended_at`. `key_id` restricts every query to one key
(what a managed key may see of the ledger).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, String, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from cluster.ledger.health import unavailable_on_outage
from cluster.ledger.records import UsageRecord, from_nano, utc
from cluster.ledger.schema import usage_records

GroupBy = Literal["model", "key", "day"]


class UsageRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str | None
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: Decimal


def _group_column(engine: Engine, group_by: GroupBy) -> ColumnElement[str | None]:
    u = usage_records.c
    if group_by == "model":
        return u.model
    if group_by == "key":
        return u.key_id
    if engine.dialect.name == "sqlite":
        return func.substr(cast(u.ended_at, String), 1, 10)
    return cast(func.date(func.timezone("UTC", u.ended_at)), String)


class LedgerQueries:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def generation(self, request_id: str, key_id: str | None = None) -> UsageRecord | None:
        u = usage_records.c
        query = select(usage_records).where(u.request_id == request_id)
        if key_id is not None:
            query = query.where(u.key_id == key_id)
        with unavailable_on_outage(), self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        m = dict(row._mapping)
        cost = from_nano(m.pop("cost_nano"))
        m["started_at"], m["ended_at"] = utc(m["started_at"]), utc(m["ended_at"])
        return UsageRecord(**m, cost=cost)

    def usage(
        self,
        group_by: GroupBy,
        *,
        start: datetime | date | None = None,
        end: datetime | date | None = None,
        key_id: str | None = None,
    ) -> list[UsageRow]:
        u = usage_records.c
        group = _group_column(self._engine, group_by).label("grp")
        query = select(
            group,
            func.count().label("requests"),
            func.coalesce(func.sum(u.prompt_tokens), 0),
            func.coalesce(func.sum(u.cached_tokens), 0),
            func.coalesce(func.sum(u.completion_tokens), 0),
            func.coalesce(func.sum(u.cost_nano), 0),
        ).where(u.status != "refused")
        if start is not None:
            query = query.where(u.ended_at >= start)
        if end is not None:
            query = query.where(u.ended_at < end)
        if key_id is not None:
            query = query.where(u.key_id == key_id)
        query = query.group_by(group).order_by(group)
        with unavailable_on_outage(), self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            UsageRow(
                group=None if row[0] is None else str(row[0]),
                requests=int(row[1]),
                prompt_tokens=int(row[2]),
                cached_tokens=int(row[3]),
                completion_tokens=int(row[4]),
                cost=from_nano(int(row[5])) or Decimal(0),
            )
            for row in rows
        ]
