"""Crash: the gateway (`modelyard sim serve --auth keys`, a real server process) is killed
with SIGKILL under streaming load, then started again on the same port and ledger. After the
restart every response a client fully received has exactly one record (with the cost the
client was told), no record is duplicated, and the reservations left open are resolved —
reported by the restarted gateway in its log. On SQLite (WAL) and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bench.processes import ManagedProcess, free_port, wait_http_ok
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.schema import reservations
from tests.integration.ledger_readback import settled_ledger
from tests.unit.ledger.app_rig import exact_json
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
QWEN = "qwen/qwen3-coder-flash"
STREAMS = 60
KILL_AFTER_S = 2.5


def start_gateway(port: int, ledger_url: str, log: Path) -> ManagedProcess:
    argv = [
        sys.executable, "-m", "cluster.cli.main", "sim", "serve", "--port", str(port),
        "--auth", "keys", "--speedup", "1",
    ]  # fmt: skip
    env = {
        "MODELYARD_LEDGER_URL": ledger_url,
        "MODELYARD_KEY_PEPPER": PEPPER.decode(),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = ManagedProcess(argv, log, env=env)
    wait_http_ok(f"http://127.0.0.1:{port}/health", timeout_s=60, process=proc)
    return proc


async def one_stream(
    client: httpx.AsyncClient, key: str, delay: float, max_tokens: int
) -> tuple[str | None, Decimal | None, bool]:
    """(response id, cost, fully received) of one streamed chat, however it ends."""
    await asyncio.sleep(delay)
    body = {
        "model": QWEN,
        "messages": [{"role": "user", "content": f"stream {delay}"}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    rid: str | None = None
    cost: Decimal | None = None
    done = False
    try:
        async with client.stream(
            "POST",
            "/api/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {key}"},
        ) as response:
            if response.status_code != 200:
                return None, None, False
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    done = True
                    break
                chunk = exact_json(data)
                if "error" in chunk:
                    return rid, None, False
                rid = chunk["id"]
                if chunk.get("usage"):
                    cost = chunk["usage"]["cost"]
    except httpx.HTTPError:
        return rid, None, False
    return rid, cost, done and cost is not None


async def load_then_kill(
    base_url: str, key: str, proc: ManagedProcess
) -> list[tuple[str | None, Decimal | None, bool]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        tasks = [
            asyncio.create_task(
                one_stream(client, key, delay=i * 0.05, max_tokens=40 + (i % 5) * 60)
            )
            for i in range(STREAMS)
        ]
        await asyncio.sleep(KILL_AFTER_S)
        os.killpg(proc.pid, signal.SIGKILL)
        return await asyncio.gather(*tasks)


def test_sigkill_under_streaming_load_loses_and_duplicates_nothing(
    ledger_url: str, tmp_path: Path
) -> None:
    engine = create_ledger_engine(ledger_url)
    migrate(engine)
    key, info = KeyStore(engine, PEPPER).create("crash", now=NOW, budget=Decimal(1000))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    first = start_gateway(port, ledger_url, tmp_path / "first.log")
    with first:
        results = asyncio.run(load_then_kill(base_url, key, first))
        first.proc.wait(timeout=10)
    assert first.proc.returncode == -signal.SIGKILL
    complete = {rid: cost for rid, cost, whole in results if whole and rid is not None}
    cut = [r for r in results if not r[2]]
    assert complete and cut, (len(complete), len(cut))  # the kill landed mid-load

    with engine.connect() as connection:
        open_before = connection.execute(select(func.count()).select_from(reservations)).scalar()
    assert open_before, "streams in flight held reservations when the gateway died"

    started = time.monotonic()
    second = start_gateway(port, ledger_url, tmp_path / "second.log")
    with second:
        log = second.log.read_text()
        assert f"ledger recovery: {open_before} open reservation(s)" in log, log
        assert time.monotonic() - started < 60
    ledger = settled_ledger(engine, info.id, timeout_s=0)  # recovery ran at the restart
    engine.dispose()
    rows, left, key_row = ledger.rows, ledger.open_reservations, ledger.key
    ids = [row.request_id for row in rows]
    assert len(ids) == len(set(ids))  # nothing recorded twice
    recorded = {row.request_id: row for row in rows}
    for rid, cost in complete.items():  # every fully received response: one record
        assert recorded[rid].status == "completed"
        assert Decimal(recorded[rid].cost_nano) / 10**9 == cost
    assert left == 0 and key_row.reserved_nano == 0  # reservations resolved
    completed_nano = sum(r.cost_nano or 0 for r in rows if r.status == "completed")
    assert key_row.spent_nano == completed_nano
    statuses = {row.status for row in rows}
    assert statuses <= {"completed", "failed"}
