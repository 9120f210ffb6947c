"""Ledger database outage under Ray: the real Serve app (`modelyard up --auth keys`, the
ledger on, gRPC on) loses its ledger's database under streaming load, then gets it back.
The scenario and its checks are `tests/integration/ledger_outage_rig.py`'s, shared with the
test without Ray (test_ledger_outage.py); the cluster is test_gateway_crash_live's rig.

Injected: PostgreSQL (a server of this test's own) stopped with `pg_ctl stop -m fast`, then
started again; SQLite (WAL) write-locked by another process (`BEGIN EXCLUSIVE`), then
released. Then:
- new HTTP requests are refused with 503, `Retry-After` and the `ledger_unavailable` error
  object, and a gRPC call with UNAVAILABLE (its `retry-after` trailer: 1 s);
- nothing is delivered unbilled: every response fully received has exactly one
  `completed` record with the cost the client saw, every stream cut off a `failed` one, no
  reservation is left open, the key's spend is its completed records' costs;
- /health says the ledger is `unavailable` (status `degraded`), then `ok`;
- service resumes by itself: the same gateway replica process (Serve did not replace it)
  answers 200 once the database is back; the time to that first 200 is printed (`-s`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from bench.processes import free_port
from cluster.errors import ModelyardError
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, grpc_code, user
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from tests.integration import ledger_outage_rig as rig
from tests.integration.ledger_readback import settled_ledger
from tests.integration.test_gateway_crash_live import cluster_file, gateway_pids, up_with_ledger
from tests.integration.test_ledger_crash import QWEN
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration


def grpc_refusal(
    target: str, key: str, refused: list[ModelyardError]
) -> Callable[[], Awaitable[None]]:
    """A `during` step for `scenario`: one gRPC chat, its error kept in `refused`."""

    async def call() -> None:
        request = ChatRequest(model=QWEN, messages=[user("hello")], max_tokens=5)
        async with ModelyardClient(target, api_key=key) as client:
            try:
                await client.chat_unary(request, deadline_s=10)
            except ModelyardError as err:
                refused.append(err)

    return call


def test_ledger_database_outage_under_ray_refuses_bills_everything_and_resumes(
    outage_db: tuple[str, rig.Outage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, outage = outage_db
    engine = create_ledger_engine(url)
    migrate(engine)
    key, info = KeyStore(engine, PEPPER).create("outage", now=NOW, budget=Decimal(1000))
    port, grpc_port = free_port(), free_port()
    config = cluster_file(
        tmp_path / "cluster.yaml", port, name="ledger-outage-live", grpc_port=grpc_port
    )
    refused: list[ModelyardError] = []
    during = grpc_refusal(f"127.0.0.1:{grpc_port}", key, refused)
    with up_with_ledger(config, url, monkeypatch) as up:
        (pid,) = gateway_pids(up.process.pid)
        seen = asyncio.run(rig.scenario(f"http://127.0.0.1:{port}", key, outage, during))
        assert gateway_pids(up.process.pid) == [pid]  # the same replica: never restarted
        assert up.process.poll() is None, up.tail()
        ledger = settled_ledger(engine, info.id)
    engine.dispose()

    print(rig.summary(f"ledger outage under Ray, {url.split(':')[0]}", seen, ledger))
    rig.check_refused(seen)
    assert len(refused) == 1, "the gRPC call during the outage was answered"
    assert grpc_code(refused[0]) == grpc.StatusCode.UNAVAILABLE, refused[0]
    assert refused[0].retry_after_s == 1
    rig.check_nothing_unbilled(seen, ledger)
