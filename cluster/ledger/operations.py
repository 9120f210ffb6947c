"""The ledger's write operations, each a function of one connection, run by
`GroupCommitWriter` inside a (batched) transaction.

- `reserve(key_id, request_id, model, amount, owner, now)`: one conditional UPDATE
      UPDATE api_keys SET reserved_nano = reserved_nano + :amount
       WHERE id = :key AND (budget_nano IS NULL
                            OR spent_nano + reserved_nano + :amount <= budget_nano)
  and, when it matched, the reservation's row. No read-then-write: concurrent requests of
  one key (in any number of gateway processes) cannot all pass a check the budget covers
  only once. Returns whether the reservation was taken.
- `settle(record)`: INSERT the record ON CONFLICT (request_id) DO NOTHING; only if the row
  was new, the key's `spent_nano += cost` and its reservation (if any) is deleted and
  `reserved_nano -= amount`. A request recorded twice (a retry, a replayed write) changes
  nothing the second time. Returns whether the record was new.
- `release(request_id)`: drop an open reservation without spending (a refused or failed
  request that has its own record elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cluster.ledger.records import UsageRecord, to_nano
from cluster.ledger.schema import api_keys, reservations, usage_records


def _insert_ignore(connection: Connection, values: dict[str, object]) -> bool:
    dialect = connection.dialect.name
    new = usage_records.c.request_id
    # RETURNING says whether the row is new (rowcount is not reported for INSERTs).
    if dialect == "postgresql":
        pg = postgresql.insert(usage_records).values(**values).on_conflict_do_nothing()
        return connection.execute(pg.returning(new)).first() is not None
    if dialect == "sqlite":
        lite = sqlite.insert(usage_records).values(**values).on_conflict_do_nothing()
        return connection.execute(lite.returning(new)).first() is not None
    raise RuntimeError(f"unsupported ledger database {dialect!r}")


def reserve(
    key_id: str, request_id: str, model: str, amount_nano: int, owner: str, now: datetime
) -> Callable[[Connection], bool]:
    def op(connection: Connection) -> bool:
        k = api_keys.c
        taken = connection.execute(
            update(api_keys)
            .where(k.id == key_id)
            .where(
                or_(
                    k.budget_nano.is_(None),
                    k.spent_nano + k.reserved_nano + amount_nano <= k.budget_nano,
                )
            )
            .values(reserved_nano=k.reserved_nano + amount_nano)
        ).rowcount
        if taken != 1:
            return False
        connection.execute(
            insert(reservations).values(
                request_id=request_id,
                key_id=key_id,
                model=model,
                amount_nano=amount_nano,
                owner=owner,
                created_at=now,
            )
        )
        return True

    return op


def _drop_reservation(connection: Connection, request_id: str, spent_nano: int) -> None:
    """Delete `request_id`'s reservation (if any) and move it from reserved to spent."""
    r = reservations.c
    row = connection.execute(
        select(r.key_id, r.amount_nano).where(r.request_id == request_id)
    ).first()
    if row is None:
        return
    connection.execute(delete(reservations).where(r.request_id == request_id))
    k = api_keys.c
    connection.execute(
        update(api_keys)
        .where(k.id == row.key_id)
        .values(
            reserved_nano=k.reserved_nano - row.amount_nano,
            spent_nano=k.spent_nano + spent_nano,
        )
    )


def settle(record: UsageRecord) -> Callable[[Connection], bool]:
    cost_nano = None if record.cost is None else to_nano(record.cost)
    values: dict[str, object] = record.model_dump(exclude={"cost"})
    values["cost_nano"] = cost_nano

    def op(connection: Connection) -> bool:
        if not _insert_ignore(connection, values):
            return False
        spent = cost_nano or 0
        r = reservations.c
        reserved = connection.execute(
            select(r.request_id).where(r.request_id == record.request_id)
        ).first()
        if reserved is not None:
            _drop_reservation(connection, record.request_id, spent)
        elif record.key_id is not None and spent:
            k = api_keys.c
            connection.execute(
                update(api_keys)
                .where(k.id == record.key_id)
                .values(spent_nano=k.spent_nano + spent)
            )
        return True

    return op


def release(request_id: str) -> Callable[[Connection], None]:
    def op(connection: Connection) -> None:
        _drop_reservation(connection, request_id, 0)

    return op
