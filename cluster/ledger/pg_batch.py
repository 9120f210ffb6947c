"""PostgreSQL: a batch's reservations, and a batch's settlements, in one statement each.

Every statement is a round trip to the server, and the group-commit writer's callers wait
for the whole batch (`writer.py`), so on PostgreSQL each operation kind of a batch goes in
one statement whatever the number of keys and requests. The per-row values travel as
arrays expanded by `unnest` (`unnest(:keys::VARCHAR[], :amounts::BIGINT[]) AS g(key,
amount)`): bound parameters only, and the same statement text for every batch size (one
SQLAlchemy cache entry; psycopg prepares it on the server after a few uses).

`reserve_groups(connection, groups, rows)`: `groups` maps each key to the sum of its
reservations in the batch; one statement
    WITH taken AS (UPDATE api_keys SET reserved_nano = reserved_nano + g.amount
                     FROM unnest(...) AS g(key, amount)
                    WHERE api_keys.id = g.key AND (budget_nano IS NULL
                          OR spent_nano + reserved_nano + g.amount <= budget_nano)
                   RETURNING api_keys.id),
         kept AS (INSERT INTO reservations SELECT ... FROM unnest(...) AS r(...)
                   WHERE r.key_id IN (SELECT id FROM taken))
    SELECT id FROM taken
takes each key's whole group when its budget covers the sum — the same conditional UPDATE
as one key's (`operations`), evaluated per row on its latest committed version (PostgreSQL
re-checks the WHERE of a row another transaction changed meanwhile), so concurrent batches
in any number of gateways never pass a check the budget covers once — and inserts the
reservations of the keys taken. Returns those keys; the caller resolves the others.

`settle(connection, rows)`: the records `rows` (unique request ids) in one statement
    WITH new AS (INSERT INTO usage_records SELECT ... FROM unnest(...)
                   ON CONFLICT (request_id) DO NOTHING
                 RETURNING request_id, key_id, cost_nano),
         gone AS (DELETE FROM reservations USING new
                   WHERE reservations.request_id = new.request_id
                  RETURNING reservations.key_id, reservations.amount_nano),
         moved AS (UPDATE api_keys SET spent_nano = spent_nano + m.spent,
                          reserved_nano = reserved_nano - m.released
                     FROM (per key: the costs of its new records, the amounts of its
                           reservations gone) AS m
                    WHERE api_keys.id = m.key_id)
    SELECT request_id FROM new
returning the request ids that were new: the same three steps as `operations.Settle` on
SQLite, in one transaction's one statement (the sub-statements communicate only through
RETURNING, as PostgreSQL requires; they touch different tables).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.expression import TableValuedAlias
from sqlalchemy.types import TypeEngine

from cluster.ledger.schema import api_keys, budget_covers, reservations, usage_records


def _unnest(name: str, columns: Sequence[tuple[str, TypeEngine[Any]]]) -> TableValuedAlias:
    """`unnest(:name_col1::T1[], ...) AS name(col1, ...)`: one array parameter per column."""
    arrays = [bindparam(f"{name}_{col}", type_=ARRAY(kind)) for col, kind in columns]
    return func.unnest(*arrays).table_valued(*(col for col, _ in columns)).render_derived(name)


def _typed(table: Table, columns: Sequence[str]) -> list[tuple[str, TypeEngine[Any]]]:
    """`columns` of `table` with their types (the arrays' element types)."""
    return [(col, table.c[col].type) for col in columns]


_k = api_keys.c

# --- reservations ---------------------------------------------------------------------------
_RESERVATION_COLUMNS = ("request_id", "key_id", "model", "amount_nano", "owner", "created_at")
_g = _unnest("g", [("key", String()), ("amount", BigInteger())])
_taken = (
    update(api_keys)
    .where(_k.id == _g.c.key)
    .where(budget_covers(_g.c.amount))
    .values(reserved_nano=_k.reserved_nano + _g.c.amount)
    .returning(_k.id)
    .cte("taken")
)
_r = _unnest("r", _typed(reservations, _RESERVATION_COLUMNS))
_kept = (
    insert(reservations)
    .from_select(
        list(_RESERVATION_COLUMNS),
        select(*(_r.c[col] for col in _RESERVATION_COLUMNS)).where(
            _r.c.key_id.in_(select(_taken.c.id))
        ),
    )
    .cte("kept")
)
_RESERVE = select(_taken.c.id).add_cte(_kept)


def reserve_groups(
    connection: Connection, groups: Mapping[str, int], rows: Sequence[Mapping[str, object]]
) -> set[str]:
    """Take each key's group (module docstring); insert the `rows` (reservations) of the keys
    taken. The keys taken."""
    keys = sorted(groups)  # one order for every batch: row locks in a consistent order
    params: dict[str, object] = {"g_key": keys, "g_amount": [groups[k] for k in keys]}
    for col in _RESERVATION_COLUMNS:
        params[f"r_{col}"] = [row[col] for row in rows]
    return {str(key) for key in connection.execute(_RESERVE, params).scalars()}


# --- settlements ----------------------------------------------------------------------------
_RECORD_COLUMNS = tuple(c.name for c in usage_records.columns)
_u = _unnest("u", _typed(usage_records, _RECORD_COLUMNS))
_new = (
    pg_insert(usage_records)
    .from_select(list(_RECORD_COLUMNS), select(*(_u.c[col] for col in _RECORD_COLUMNS)))
    .on_conflict_do_nothing(index_elements=["request_id"])
    .returning(usage_records.c.request_id, usage_records.c.key_id, usage_records.c.cost_nano)
    .cte("new")
)
_gone = (
    delete(reservations)
    .where(reservations.c.request_id == _new.c.request_id)
    .returning(reservations.c.key_id, reservations.c.amount_nano)
    .cte("gone")
)
_zero = literal(0, BigInteger())
_changes = union_all(
    select(
        _new.c.key_id.label("key_id"),
        func.coalesce(_new.c.cost_nano, _zero).label("spent"),
        _zero.label("released"),
    ).where(_new.c.key_id.is_not(None)),
    select(_gone.c.key_id, _zero, _gone.c.amount_nano),
).subquery("c")
_per_key = (
    select(
        _changes.c.key_id,
        func.sum(_changes.c.spent).cast(BigInteger()).label("spent"),
        func.sum(_changes.c.released).cast(BigInteger()).label("released"),
    )
    .group_by(_changes.c.key_id)
    .subquery("m")
)
_moved = (
    update(api_keys)
    .where(_k.id == _per_key.c.key_id)
    .where(or_(_per_key.c.spent != 0, _per_key.c.released != 0))
    .values(
        spent_nano=_k.spent_nano + _per_key.c.spent,
        reserved_nano=_k.reserved_nano - _per_key.c.released,
    )
    .cte("moved")
)
_SETTLE = select(_new.c.request_id).add_cte(_moved)


def settle(connection: Connection, rows: Sequence[Mapping[str, object]]) -> set[str]:
    """Insert the usage records `rows` (unique request ids) and settle the new ones (module
    docstring). The request ids that were new."""
    params = {f"u_{col}": [row[col] for row in rows] for col in _RECORD_COLUMNS}
    return {str(rid) for rid in connection.execute(_SETTLE, params).scalars()}
