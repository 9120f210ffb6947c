"""Billing through the real Ray Serve application: `modelyard up --auth keys` in a
subprocess (Ray, Serve, the gateway replica, simulated model replicas), on SQLite and on
PostgreSQL.

- 500 concurrent requests over 20 managed keys (half streamed): every one answered, and
  the ledger's total equals the sum of the `usage.cost` the clients received, exactly;
- 50 concurrent requests against a budget that covers exactly 10: 10 answered, 40 refused
  with 402. (The model there has output-only prices and a 4-token answer, so each request
  costs exactly its worst case.)
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from bench.processes import free_port
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.schema import reservations, usage_records
from tests.integration.up_process import UpProcess
from tests.unit.ledger.app_rig import received
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration

QWEN = "qwen/qwen3-coder-flash"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
READY_LINE = "Press Ctrl-C to stop."
READY_TIMEOUT_S = 180.0


def cluster_file(path: Path, port: int) -> Path:
    output_only = {"tiers": [{"input": "0", "output": "151", "cache_read": "0"}]}
    path.write_text(
        yaml.safe_dump(
            {
                "name": "billing-live",
                "gateway": {"host": "127.0.0.1", "port": port},
                "ray": {"num_cpus": 4, "virtual_gpus": 4},
                "models": [
                    {"id": QWEN, "engine": "sim", "sim": {"speedup": 200}},
                    {
                        "id": MISTRAL,
                        "engine": "sim",
                        "sim": {"speedup": 200},
                        "prices": output_only,
                    },
                ],
            }
        )
    )
    return path


async def chat(
    client: httpx.AsyncClient, key: str, model: str, *, stream: bool, max_tokens: int, words: int
) -> httpx.Response:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "word " * words}],
        "max_tokens": max_tokens,
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return await client.post(
        "/api/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


async def load(base_url: str, keys: list[str], ten: str) -> tuple[list[httpx.Response], list[int]]:
    limits = httpx.Limits(max_connections=600, max_keepalive_connections=600)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        many = await asyncio.gather(
            *(
                chat(client, keys[i % 20], QWEN, stream=i % 2 == 1, max_tokens=1 + i % 40,
                     words=1 + (i * 7) % 300)
                for i in range(500)
            )
        )  # fmt: skip
        budgeted = await asyncio.gather(
            *(
                chat(client, ten, MISTRAL, stream=i % 2 == 0, max_tokens=4, words=3)
                for i in range(50)
            )
        )
    return list(many), sorted(r.status_code for r in budgeted)


def test_ledger_matches_clients_through_ray_serve(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_ledger_engine(ledger_url)
    migrate(engine)
    store = KeyStore(engine, PEPPER)
    keys = [store.create(f"k{i}", now=NOW, budget=Decimal(100))[0] for i in range(20)]
    ten, ten_info = store.create("ten", now=NOW, budget=Decimal(10 * 4 * 151) / 10**6)
    port = free_port()
    env = {"MODELYARD_KEY_PEPPER": PEPPER.decode(), "MODELYARD_LEDGER_URL": ledger_url}
    monkeypatch.delenv("MODELYARD_LEDGER_URL", raising=False)  # this test's ledger, not another
    monkeypatch.delenv("MODELYARD_KEY_PEPPER", raising=False)
    config = cluster_file(tmp_path / "cluster.yaml", port)
    up = UpProcess(["--config", str(config), "--auth", "keys"], env_defaults=env)
    try:
        assert up.read_until(READY_LINE, READY_TIMEOUT_S), up.tail()
        assert any("authentication: keys" in line for line in up.seen), up.tail()
        many, codes = asyncio.run(load(f"http://127.0.0.1:{port}", keys, ten))
    finally:
        up.kill()
    assert [r.status_code for r in many] == [200] * 500
    got = [received(r) for r in many]
    assert all(whole for _, _, whole in got)
    client_total = sum((cost for _, cost, _ in got), Decimal(0))
    assert codes == [200] * 10 + [402] * 40
    with engine.connect() as connection:
        u = usage_records.c
        count, nano = connection.execute(
            select(func.count(), func.sum(u.cost_nano)).where(u.model == QWEN)
        ).one()
        open_reservations = connection.execute(
            select(func.count()).select_from(reservations)
        ).scalar()
    engine.dispose()
    assert count == 500
    assert Decimal(int(nano)) / 10**9 == client_total
    assert open_reservations == 0
    shown = store.show(ten_info.id)
    assert shown is not None and shown.spent == shown.budget and shown.reserved == 0
