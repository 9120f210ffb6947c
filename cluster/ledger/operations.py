"""The ledger's write operations, run by `GroupCommitWriter` inside a (batched) transaction.

Each is a callable of one connection (`op(connection)`), and `run_many(connection, ops)`
runs many of the same kind in few statements (the writer groups a batch by kind):

- `Reserve(key_id, request_id, model, amount_nano, owner, now)`: the conditional UPDATE
      UPDATE api_keys SET reserved_nano = reserved_nano + :amount
       WHERE id = :key AND (budget_nano IS NULL
                            OR spent_nano + reserved_nano + :amount <= budget_nano)
  per reservation (each sees the ones before it) — or one for all of a key's reservations
  in the batch (`:amount` their sum) when its budget covers the sum, which is the same
  outcome — then an INSERT of every reservation taken. No read-then-write: concurrent
  requests of one key (in any number of gateway processes) cannot all pass a check the
  budget covers only once; a budget that allows exactly K admits K. Result: taken or not.
  Statements per batch: SQLite (in process, no round trips) one UPDATE per key of the
  batch, plus one per reservation of a key whose budget does not cover its group, and one
  INSERT. PostgreSQL (each statement a round trip): ONE statement for every key's group
  and the INSERT of their reservations (`pg_batch.reserve_groups`: `UPDATE ... FROM
  unnest(keys, sums)` in a data-modifying CTE); a key it does not take and that has more
  than one reservation in the batch then goes one UPDATE per reservation, in order, and
  one INSERT (a budget near its end; a lone reservation was refused by that same check).
- `Settle(record)`: INSERT the records ... ON CONFLICT (request_id) DO NOTHING RETURNING
  the new ids; DELETE ... RETURNING the reservations of the new ones; per key
  `spent_nano += costs of its new records`, `reserved_nano -= their reservations`. A
  request recorded twice (a retry, a replayed write) changes nothing the second time.
  Result: whether the record was new. Statements per batch: SQLite three (the INSERT, the
  DELETE, one executemany UPDATE); PostgreSQL ONE (`pg_batch.settle`: the three steps as
  data-modifying CTEs of one statement).
- `Release(request_id)`: drop an open reservation without spending anything.

`durable` (class attribute): whether a batch holding the operation must reach the disk
before its callers resume. `Reserve` is not (`database.relax_durability`: on SQLite a batch
of reservations only commits without an fsync; the request's record, always durable,
carries it to the disk) — one fsync per request instead of two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import Connection, bindparam, delete, insert, update
from sqlalchemy.dialects import sqlite

from cluster.ledger import pg_batch
from cluster.ledger.records import UsageRecord, to_nano
from cluster.ledger.schema import api_keys, budget_covers, reservations, usage_records

_k = api_keys.c
# Built once: the statements run for every request, with bound parameters.
_TAKE = (
    update(api_keys)
    .where(_k.id == bindparam("key"))
    .where(budget_covers(bindparam("amount")))
    .values(reserved_nano=_k.reserved_nano + bindparam("amount"))
)
_MOVE = (
    update(api_keys)
    .where(_k.id == bindparam("key"))
    .values(
        reserved_nano=_k.reserved_nano - bindparam("released"),
        spent_nano=_k.spent_nano + bindparam("spent"),
    )
)


def _insert_new(connection: Connection, rows: list[dict[str, object]]) -> set[str]:
    """SQLite: insert `rows` into usage_records, skipping ids already there; the ids
    inserted (RETURNING says which rows are new: rowcount is not reported for INSERTs)."""
    new = usage_records.c.request_id
    lite = sqlite.insert(usage_records).on_conflict_do_nothing().returning(new)
    return {str(r[0]) for r in connection.execute(lite, rows)}


def _move_to_spent(
    connection: Connection, request_ids: Sequence[str], spent: dict[str, int]
) -> None:
    """Delete the reservations of `request_ids`; per key, `reserved -= their amounts` and
    `spent += spent[key]`."""
    released: dict[str, int] = defaultdict(int)
    if request_ids:
        r = reservations.c
        rows = connection.execute(
            delete(reservations)
            .where(r.request_id.in_(list(request_ids)))
            .returning(r.key_id, r.amount_nano)
        ).all()
        for key_id, amount in rows:
            released[str(key_id)] += int(amount)
    params = [
        {"key": key_id, "released": released.get(key_id, 0), "spent": spent.get(key_id, 0)}
        for key_id in sorted(set(released) | {key for key, v in spent.items() if v})
    ]
    if params:  # one executemany: one round trip on PostgreSQL (psycopg 3's pipeline)
        connection.execute(_MOVE, params)


def _take(connection: Connection, key_id: str, amount_nano: int) -> bool:
    """The conditional UPDATE (module docstring): whether `amount_nano` was reserved."""
    matched = connection.execute(_TAKE, {"key": key_id, "amount": amount_nano}).rowcount
    return bool(matched == 1)


@dataclass(frozen=True, slots=True)
class Reserve:
    durable: ClassVar[bool] = False

    key_id: str
    request_id: str
    model: str
    amount_nano: int
    owner: str
    now: datetime

    def __call__(self, connection: Connection) -> bool:
        return Reserve.run_many(connection, [self])[0]

    def row(self) -> dict[str, object]:
        return {
            "request_id": self.request_id,
            "key_id": self.key_id,
            "model": self.model,
            "amount_nano": self.amount_nano,
            "owner": self.owner,
            "created_at": self.now,
        }

    @staticmethod
    def run_many(connection: Connection, ops: Sequence[Reserve]) -> list[bool]:
        by_key: dict[str, list[int]] = defaultdict(list)
        for i, op in enumerate(ops):
            by_key[op.key_id].append(i)
        taken = [False] * len(ops)
        inserted: set[int] = set()  # reservations already in the table
        one_by_one: list[int] = []  # of keys whose budget may not cover their whole group
        if connection.dialect.name == "postgresql":
            # Every key's group in one statement (`pg_batch`), its reservations inserted.
            groups = {key: sum(ops[i].amount_nano for i in idx) for key, idx in by_key.items()}
            whole = pg_batch.reserve_groups(connection, groups, [op.row() for op in ops])
            for key_id, indexes in by_key.items():
                if key_id in whole:
                    inserted.update(indexes)
                elif len(indexes) > 1:  # a lone one was refused by the very same condition
                    one_by_one.extend(indexes)
        else:
            for key_id, indexes in by_key.items():
                # The whole group in one UPDATE when the budget covers all of it (the usual
                # case); else one conditional UPDATE per reservation, in order.
                total = sum(ops[i].amount_nano for i in indexes)
                if len(indexes) > 1 and _take(connection, key_id, total):
                    for i in indexes:
                        taken[i] = True
                else:
                    one_by_one.extend(indexes)
        for i in inserted:
            taken[i] = True
        for i in one_by_one:
            taken[i] = _take(connection, ops[i].key_id, ops[i].amount_nano)
        rows = [ops[i].row() for i, ok in enumerate(taken) if ok and i not in inserted]
        if rows:
            connection.execute(insert(reservations), rows)
        return taken


@dataclass(frozen=True, slots=True)
class Settle:
    record: UsageRecord

    def __call__(self, connection: Connection) -> bool:
        return Settle.run_many(connection, [self])[0]

    def row(self) -> dict[str, object]:
        values: dict[str, object] = self.record.model_dump(exclude={"cost"})
        values["cost_nano"] = None if self.record.cost is None else to_nano(self.record.cost)
        return values

    @staticmethod
    def run_many(connection: Connection, ops: Sequence[Settle]) -> list[bool]:
        rows: dict[str, dict[str, object]] = {}
        for op in ops:
            rows.setdefault(op.record.request_id, op.row())  # one request twice: first wins
        if connection.dialect.name == "postgresql":  # the three steps in one statement
            new = pg_batch.settle(connection, list(rows.values()))
        else:
            new = _insert_new(connection, list(rows.values()))
            spent: dict[str, int] = defaultdict(int)
            for request_id in new:
                row = rows[request_id]
                if row["key_id"] is not None:
                    spent[str(row["key_id"])] += int(str(row["cost_nano"] or 0))
            _move_to_spent(connection, sorted(new), spent)
        claimed: set[str] = set()
        results = []
        for op in ops:  # the first op of a new request id reports it new
            rid = op.record.request_id
            results.append(rid in new and rid not in claimed)
            claimed.add(rid)
        return results


@dataclass(frozen=True, slots=True)
class Release:
    request_id: str

    def __call__(self, connection: Connection) -> None:
        _move_to_spent(connection, [self.request_id], {})
