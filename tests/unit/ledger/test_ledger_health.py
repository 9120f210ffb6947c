"""The writer when the database goes away and comes back (`cluster.ledger.health`), on a real
SQLite file write-locked by another connection (as a stuck writer would hold it): callers
get `LedgerUnavailable` with Retry-After, health goes down, deferred work waits in the
outbox, and once the lock is gone the writer's probe commits it and health is up again —
no restart. A bad operation is still not an outage. The end-to-end version on PostgreSQL
and SQLite is tests/integration/test_ledger_outage.py."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import event, select

from cluster.errors import LedgerUnavailable, ModelyardError
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, grpc_code, user
from cluster.gateway.grpc.server import build_grpc_server
from cluster.ledger import operations
from cluster.ledger.database import relax_durability
from cluster.ledger.health import LedgerHealth
from cluster.ledger.schema import usage_records
from cluster.ledger.writer import GroupCommitWriter
from tests.unit.ledger.app_rig import QWEN, billing_app
from tests.unit.ledger.helpers import ledger_engine, record

NOW_UTC = datetime.now(UTC)


def short_busy_engine(path: Path) -> Any:
    engine = ledger_engine(f"sqlite:///{path}")

    def short_wait(dbapi_connection: Any, _record: Any) -> None:  # not 5 s per attempt
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    event.listen(engine, "connect", short_wait)
    engine.dispose()  # connections opened from here on wait 200 ms
    return engine


async def wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_locked_database_refuses_then_resumes_and_commits_the_outbox(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite"
    engine = short_busy_engine(path)
    writer = GroupCommitWriter(engine, probe_interval_s=0.1)
    writer.start()
    lock = sqlite3.connect(path, isolation_level=None)
    try:
        assert await writer.submit(operations.Settle(record("before")))
        assert writer.health.available and writer.health.state() == "ok"
        lock.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerUnavailable) as caught:
            await writer.submit(operations.Settle(record("during")))
        assert caught.value.retry_after_s is not None and caught.value.retry_after_s >= 1
        assert caught.value.code == "ledger_unavailable"
        assert not writer.health.available and writer.health.state() == "unavailable"
        with pytest.raises(LedgerUnavailable):
            writer.health.check()
        writer.defer(operations.Settle(record("deferred", status="failed", cost=None)))
        await asyncio.sleep(0.5)  # probes fail meanwhile; the outbox waits
        assert writer.deferred == 1 and not writer.health.available
        lock.execute("ROLLBACK")
        await wait_for(lambda: writer.health.available)
        assert writer.deferred == 0
        assert writer.health.outages == 1 and writer.health.last_outage_s is not None
        assert await writer.submit(operations.Settle(record("after")))
    finally:
        lock.close()
        writer.stop()
    with engine.connect() as connection:
        rows = dict(
            connection.execute(select(usage_records.c.request_id, usage_records.c.status)).all()
        )
    assert rows == {"before": "completed", "deferred": "failed", "after": "completed"}
    engine.dispose()


async def test_a_bad_operation_is_not_an_outage(tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = short_busy_engine(tmp_path / "ledger.sqlite")
    writer = GroupCommitWriter(engine)
    writer.start()

    def no_such_table(connection: Any) -> None:  # OperationalError, but the database is fine
        connection.execute(text("SELECT * FROM no_such_table"))

    try:
        results = await asyncio.gather(
            writer.submit(operations.Settle(record("good"))),
            writer.submit(no_such_table),
            return_exceptions=True,
        )
        # In the outbox, a bad operation is dropped alone; the others are committed.
        writer.defer(no_such_table)
        writer.defer(operations.Settle(record("deferred", status="failed", cost=None)))
        await wait_for(lambda: writer.deferred == 0)
    finally:
        writer.stop()
    assert results[0] is True and isinstance(results[1], LedgerUnavailable)
    assert writer.health.available and writer.health.outages == 0
    with engine.connect() as connection:
        ids = set(connection.execute(select(usage_records.c.request_id)).scalars())
    assert ids == {"good", "deferred"}
    engine.dispose()


def test_health_counts_one_outage_and_its_length() -> None:
    now = [100.0]
    health = LedgerHealth(clock=lambda: now[0])
    assert health.mark_down("OperationalError") and not health.mark_down("again")
    now[0] = 102.5
    assert health.mark_up() == 2.5 and health.mark_up() is None
    assert health.outages == 1 and health.available


async def test_both_front_doors_refuse_while_locked_and_resume(tmp_path: Path) -> None:
    """The real app (HTTP and gRPC over the same service): 503 + Retry-After and gRPC
    UNAVAILABLE with its retry-after trailer while another process holds SQLite's write
    lock, /health `degraded`, then both answer again by themselves."""
    path = tmp_path / "ledger.sqlite"
    async with billing_app(f"sqlite:///{path}") as rig:
        server = build_grpc_server(rig.app_state.service, rig.app_state.authenticator)
        await server.start()
        key, _ = rig.keys.create("outage", now=NOW_UTC, budget=Decimal(100))
        request = ChatRequest(model=QWEN, messages=[user("hello")], max_tokens=5)
        lock = sqlite3.connect(path, isolation_level=None)
        try:
            assert (await rig.chat(key)).status_code == 200
            lock.execute("BEGIN EXCLUSIVE")
            refused = await rig.chat(key)  # waits out the busy timeout, then 503
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "1"
            assert refused.json()["error"]["code"] == "ledger_unavailable"
            health = (await rig.http.get("/health")).json()
            assert health["ledger"] == "unavailable" and health["status"] == "degraded"
            async with ModelyardClient(server.target, api_key=key) as client:
                with pytest.raises(ModelyardError) as caught:
                    await client.chat_unary(request, deadline_s=10)
            assert grpc_code(caught.value) == grpc.StatusCode.UNAVAILABLE
            assert caught.value.retry_after_s == 1
            lock.execute("ROLLBACK")
            await wait_for(lambda: rig.ledger.writer.health.available)
            assert (await rig.chat(key)).status_code == 200
            async with ModelyardClient(server.target, api_key=key) as client:
                assert (await client.chat_unary(request, deadline_s=10)).cost.priced
            assert (await rig.http.get("/health")).json()["ledger"] == "ok"
        finally:
            lock.close()
            await server.stop(1.0)


def test_a_relaxed_sqlite_connection_is_full_again_in_the_pool(tmp_path: Path) -> None:
    """`relax_durability` (reservation batches on SQLite) lasts one transaction: the pooled
    connection is back to synchronous=FULL (2) for whoever takes it next."""
    engine = ledger_engine(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    engine.dispose()  # one fresh pooled connection from here on
    with engine.begin() as connection:
        assert relax_durability(connection)
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        first = connection.connection.dbapi_connection
    with engine.connect() as connection:
        assert connection.connection.dbapi_connection is first
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()
