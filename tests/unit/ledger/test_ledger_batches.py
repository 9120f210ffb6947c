"""A batch of reservations and settlements on real SQLite and real PostgreSQL: what each
budget covers, in order, whatever the mix of keys; settlements per key to the nano; the
number of statements a batch takes (on PostgreSQL one per operation kind, `pg_batch`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, select

from cluster.ledger import operations
from cluster.ledger.keys import KeyStore
from cluster.ledger.schema import api_keys, reservations
from cluster.ledger.writer import GroupCommitWriter
from tests.unit.ledger.helpers import NOW, PEPPER, ledger_engine, record

UNIT = 1000  # nano-units per reservation


def _keys(engine: Engine, budgets: list[int | None]) -> list[str]:
    store = KeyStore(engine, PEPPER)
    ids = []
    for i, budget in enumerate(budgets):
        _, info = store.create(f"team-{i}", now=NOW)
        with engine.begin() as connection:
            connection.execute(
                api_keys.update().where(api_keys.c.id == info.id).values(budget_nano=budget)
            )
        ids.append(info.id)
    return ids


def _balances(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(api_keys.c.id, api_keys.c.spent_nano, api_keys.c.reserved_nano)
        )
        return {str(r.id): (int(r.spent_nano), int(r.reserved_nano)) for r in rows}


@contextmanager
def _counting(engine: Engine) -> Iterator[list[str]]:
    """The statements the driver executes meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_batch_over_many_keys_takes_what_each_budget_covers(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    # unlimited; covers all 3; covers 2 of 4 (then the rest, in order); covers none of 2;
    # a lone reservation over budget; a lone one exactly at budget; already half spent
    keys = _keys(engine, [None, 3 * UNIT, 2 * UNIT + 500, UNIT // 2, UNIT - 1, UNIT, 4 * UNIT])
    unlimited, all3, some, none, lone_over, lone_exact, half = keys
    with engine.begin() as connection:
        connection.execute(
            api_keys.update().where(api_keys.c.id == half).values(spent_nano=2 * UNIT)
        )
    plan = [unlimited, all3, some, none, some, all3, lone_over, some, half, unlimited]
    plan += [none, some, all3, lone_exact, half, half]  # `half`: 3 asked, room for 2
    ops = [operations.Reserve(k, f"r{i}", "m", UNIT, "gw", NOW) for i, k in enumerate(plan)]
    with engine.begin() as connection:
        taken = operations.Reserve.run_many(connection, ops)
    # `some` takes its first two in batch order; `half` its first two
    expected_keys = {unlimited: 2, all3: 3, some: 2, none: 0, lone_over: 0, lone_exact: 1}
    expected_keys[half] = 2
    expected = []
    count: dict[str, int] = {}
    for key in plan:
        count[key] = count.get(key, 0) + 1
        expected.append(count[key] <= expected_keys[key])
    assert taken == expected
    with engine.connect() as connection:
        held = connection.execute(select(reservations.c.request_id, reservations.c.key_id)).all()
    assert sorted(rid for rid, _ in held) == sorted(
        op.request_id for op, ok in zip(ops, taken, strict=True) if ok
    )
    balances = _balances(engine)
    for key, n in expected_keys.items():
        spent = 2 * UNIT if key == half else 0
        assert balances[key] == (spent, n * UNIT), key
    engine.dispose()


def test_a_batch_of_settlements_moves_each_keys_money_once(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    a, b = _keys(engine, [10 * UNIT, None])
    with engine.begin() as connection:
        reserved = [operations.Reserve(a, f"a{i}", "m", UNIT, "gw", NOW) for i in range(4)]
        reserved.append(operations.Reserve(b, "b0", "m", UNIT, "gw", NOW))
        assert all(operations.Reserve.run_many(connection, reserved))
        assert operations.Settle(record("a0", key_id=a, cost="0.0000003"))(connection)
    batch = [
        operations.Settle(record("a0", key_id=a, cost="0.0000003")),  # recorded before
        operations.Settle(record("a1", key_id=a, cost="0.0000007")),
        operations.Settle(record("a1", key_id=a, cost="0.0000007")),  # twice in the batch
        operations.Settle(record("a2", key_id=a, cost=None, status="failed")),
        operations.Settle(record("b0", key_id=b, cost="0.000000011")),
        operations.Settle(record("anon", cost="0.5")),  # no key: recorded, nothing to move
    ]
    with engine.begin() as connection:
        results = operations.Settle.run_many(connection, batch)
    assert results == [False, True, False, True, True, True]
    balances = _balances(engine)
    assert balances[a] == (300 + 700, UNIT)  # a3 still open
    assert balances[b] == (11, 0)
    with engine.connect() as connection:
        left = connection.execute(select(reservations.c.request_id)).scalars().all()
    assert left == ["a3"]
    engine.dispose()


def test_statements_per_batch(ledger_url: str) -> None:
    """PostgreSQL: one statement per operation kind whatever the number of keys; SQLite (in
    process, no round trips): one conditional UPDATE per key, as before."""
    engine = ledger_engine(ledger_url)
    keys = _keys(engine, [100 * UNIT] * 20)
    reserves = [operations.Reserve(keys[i % 20], f"r{i}", "m", UNIT, "gw", NOW) for i in range(60)]
    settles = [operations.Settle(record(f"r{i}", key_id=keys[i % 20])) for i in range(60)]
    with engine.begin() as connection, _counting(engine) as seen:
        assert all(operations.Reserve.run_many(connection, reserves))
        reserve_statements = len(seen)
        assert all(operations.Settle.run_many(connection, settles))
        settle_statements = len(seen) - reserve_statements
    expected = {"postgresql": (1, 1), "sqlite": (20 + 1, 3)}[engine.dialect.name]
    assert (reserve_statements, settle_statements) == expected
    assert _balances(engine)[keys[0]] == (3 * 1_000_000, 0)  # record()'s cost: 0.001
    engine.dispose()


async def test_two_writers_on_one_database_admit_exactly_what_each_budget_covers(
    ledger_url: str,
) -> None:
    """Two gateways' writers (two engines, two connection pools) reserving concurrently over
    the same keys: every budget admits exactly what it covers, in total."""
    engines = [ledger_engine(ledger_url) for _ in range(2)]
    keys = _keys(engines[0], [7 * UNIT, 12 * UNIT, 1 * UNIT, None])
    writers = [GroupCommitWriter(engine) for engine in engines]
    for writer in writers:
        writer.start()
    try:
        asks = [
            writers[i % 2].submit(
                operations.Reserve(keys[i % 4], f"r{i}", "m", UNIT, f"gw{i % 2}", NOW)
            )
            for i in range(160)
        ]
        taken = await asyncio.gather(*asks)
    finally:
        for writer in writers:
            writer.stop()
    per_key = {key: sum(ok for i, ok in enumerate(taken) if keys[i % 4] == key) for key in keys}
    assert per_key == {keys[0]: 7, keys[1]: 12, keys[2]: 1, keys[3]: 40}
    balances = _balances(engines[0])
    assert [balances[k] for k in keys] == [(0, n * UNIT) for n in (7, 12, 1, 40)]
    for engine in engines:
        engine.dispose()
