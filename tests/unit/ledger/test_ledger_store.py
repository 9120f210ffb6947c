"""The ledger on real SQLite (WAL) and real PostgreSQL: migrations, group commit,
idempotent records, reservations without races, recovery, keys, queries."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from cluster.errors import LedgerUnavailable
from cluster.ledger import operations
from cluster.ledger.database import migrate
from cluster.ledger.keys import KEY_PREFIX, KeyStore, parse_key
from cluster.ledger.queries import LedgerQueries
from cluster.ledger.records import to_nano
from cluster.ledger.recovery import recover_reservations
from cluster.ledger.schema import api_keys, reservations, usage_records
from cluster.ledger.writer import GroupCommitWriter
from tests.unit.ledger.helpers import NOW, PEPPER, ledger_engine, record


def test_migrations_run_twice_and_sqlite_is_in_wal_mode(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    migrate(engine)  # a second start is a no-op
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == "0001_ledger"
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


async def test_group_commit_batches_and_records_each_request_once(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        records = [record(f"req-{i}", cost="0.000753") for i in range(500)]
        results = await asyncio.gather(*(writer.submit(operations.Settle(r)) for r in records))
        assert all(results)
        assert writer.batches < 100  # grouped, not one transaction per record
        again = await asyncio.gather(*(writer.submit(operations.Settle(r)) for r in records[:50]))
        assert not any(again)  # idempotent by request id
    finally:
        writer.stop()
    with engine.connect() as connection:
        count = connection.execute(select(usage_records.c.request_id)).all()
        total = connection.execute(text("SELECT SUM(cost_nano) FROM usage_records")).scalar()
    assert len(count) == 500
    assert total == 500 * to_nano(Decimal("0.000753"))
    engine.dispose()


async def test_a_failing_write_reaches_its_caller_and_spares_the_batch(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    writer = GroupCommitWriter(engine, linger_s=0.05)
    writer.start()

    def broken(connection: object) -> None:
        raise RuntimeError("disk full")

    try:
        good = [writer.submit(operations.Settle(record(f"ok-{i}"))) for i in range(5)]
        results = await asyncio.gather(*good, writer.submit(broken), return_exceptions=True)
    finally:
        writer.stop()
    assert results[:5] == [True] * 5
    assert isinstance(results[5], LedgerUnavailable)
    engine.dispose()


def _key_with_budget(engine: object, budget_nano: int | None) -> str:
    store = KeyStore(engine, PEPPER)  # type: ignore[arg-type]
    _, info = store.create("team", now=NOW)
    with engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            api_keys.update().where(api_keys.c.id == info.id).values(budget_nano=budget_nano)
        )
    return info.id


async def test_concurrent_reservations_admit_exactly_what_the_budget_covers(
    ledger_url: str,
) -> None:
    engine = ledger_engine(ledger_url)
    key_id = _key_with_budget(engine, 10 * 1000)
    writer = GroupCommitWriter(engine)
    writer.start()
    try:
        taken = await asyncio.gather(
            *(
                writer.submit(operations.Reserve(key_id, f"r{i}", "m", 1000, "gw", NOW))
                for i in range(50)
            )
        )
        assert sum(taken) == 10
        # settling one at its real (lower) cost frees the difference, and no more
        first = next(f"r{i}" for i, ok in enumerate(taken) if ok)
        settled = record(first, key_id=key_id, cost="0.0000004")  # 400 nano
        assert await writer.submit(operations.Settle(settled))
        assert not await writer.submit(operations.Settle(settled))  # billed once
    finally:
        writer.stop()
    with engine.connect() as connection:
        row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
    assert (row.spent_nano, row.reserved_nano) == (400, 9 * 1000)
    engine.dispose()


def test_recovery_releases_open_reservations_with_one_failed_record_each(
    ledger_url: str,
) -> None:
    engine = ledger_engine(ledger_url)
    key_id = _key_with_budget(engine, 10_000)
    with engine.begin() as connection:
        for i in range(3):
            operations.Reserve(key_id, f"open-{i}", "m", 1000, "gw-a", NOW)(connection)
        operations.Reserve(key_id, "other-live", "m", 1000, "gw-b", NOW)(connection)
    report = recover_reservations(engine, owner="gw-a", now=NOW, stale_after_s=600)
    assert (report.released, report.settled) == (3, 0)
    with engine.connect() as connection:
        left = connection.execute(select(reservations.c.request_id)).scalars().all()
        statuses = connection.execute(select(usage_records.c.status)).scalars().all()
        row = connection.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
    assert left == ["other-live"]  # another live gateway's reservation is kept
    assert statuses == ["failed"] * 3
    assert (row.spent_nano, row.reserved_nano) == (0, 1000)
    later = NOW + timedelta(hours=1)
    assert recover_reservations(engine, owner="gw-a", now=later, stale_after_s=600).released == 1
    engine.dispose()


def test_keys_store_only_a_peppered_hash(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    store = KeyStore(engine, PEPPER)
    key, info = store.create(
        "ci", now=NOW, budget=Decimal("12.5"), rpm=60, tpm=1000, models=["qwen/qwen3-coder-flash"]
    )
    assert parse_key(key) == info.id
    with engine.connect() as connection:
        dumped = " ".join(str(v) for v in connection.execute(select(api_keys)).one())
    # The secret part whole (it may itself hold "-": splitting on the last one could leave a
    # fragment of a character or two, found in any hex digest by chance).
    secret = key.removeprefix(f"{KEY_PREFIX}-{info.id}-")
    assert len(secret) == 43
    assert key not in dumped and secret not in dumped
    assert store.verify(key) == info
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert KeyStore(engine, b"another pepper").verify(key) is None
    assert info.budget == Decimal("12.5") and info.models == ["qwen/qwen3-coder-flash"]
    rotated = store.rotate(info.id)
    assert rotated is not None and store.verify(key) is None and store.verify(rotated) is not None
    assert store.revoke(info.id, NOW)
    revoked = store.verify(rotated)
    assert revoked is not None and revoked.revoked_at == NOW
    assert [k.id for k in store.list()] == [info.id]
    engine.dispose()


async def test_queries_group_by_model_key_and_day(ledger_url: str) -> None:
    engine = ledger_engine(ledger_url)
    with engine.begin() as connection:
        operations.Settle(record("a", key_id="k1", cost="0.5"))(connection)
        operations.Settle(record("b", key_id="k2", cost="0.25", model="x/y"))(connection)
        day2 = NOW + timedelta(days=1)
        operations.Settle(record("c", key_id="k1", cost="0.125", when=day2))(connection)
        operations.Settle(record("d", key_id="k1", cost=None, status="refused"))(connection)
    queries = LedgerQueries(engine)
    by_model = {r.group: r.cost for r in queries.usage("model")}
    assert by_model == {"qwen/qwen3-coder-flash": Decimal("0.625"), "x/y": Decimal("0.25")}
    by_key = {r.group: (r.requests, r.cost) for r in queries.usage("key")}
    assert by_key == {"k1": (2, Decimal("0.625")), "k2": (1, Decimal("0.25"))}
    by_day = {r.group: r.cost for r in queries.usage("day")}
    assert by_day == {"2026-12-01": Decimal("0.75"), "2026-12-02": Decimal("0.125")}
    only_first_day = queries.usage("key", start=NOW, end=NOW + timedelta(hours=1), key_id="k1")
    assert [(r.group, r.cost) for r in only_first_day] == [("k1", Decimal("0.5"))]
    found = queries.generation("a")
    assert found is not None and found.cost == Decimal("0.5") and found.started_at == NOW
    assert queries.generation("a", key_id="k2") is None
    engine.dispose()


@pytest.mark.parametrize("amount", ["0.000000001", "123.456789012"])
def test_money_round_trips_exactly(amount: str) -> None:
    from cluster.ledger.records import from_nano

    assert from_nano(to_nano(Decimal(amount))) == Decimal(amount)
    with pytest.raises(ValueError):
        to_nano(Decimal("0.0000000001"))


def _start_gateway_ledger(url: str) -> str:
    from cluster.config.settings import LedgerSettings
    from cluster.ledger.database import open_ledger_engine

    open_ledger_engine(LedgerSettings(), {"MODELYARD_LEDGER_URL": url}).dispose()
    return "ok"


def test_replicas_starting_together_all_migrate(ledger_url: str) -> None:
    """Four gateway processes opening one fresh database at once: every one starts (the
    losers of the migration race retry and find it done)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        results = list(pool.map(_start_gateway_ledger, [ledger_url] * 4))
    assert results == ["ok"] * 4
