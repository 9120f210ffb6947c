"""Crash under Ray: the gateway replica's worker process is killed with SIGKILL while ~30
streams run through the real Serve app (`modelyard up --auth keys`, the ledger on), on
SQLite (WAL) and on PostgreSQL. Serve starts a new gateway replica; at its start the
ledger's recovery resolves the reservations the killed one left open.

Then: every response a client fully received (`[DONE]` after a usage chunk with a cost) has
exactly one `completed` record with that cost, no record is duplicated, every reservation
open at the kill is resolved (a record for its request, none left open, nothing reserved on
the key: the restarted replica's recovery wrote a `failed` record for each), and new
requests are served. The time
from the kill until the gateway serves again is printed (`-s`) for docs/RELIABILITY.md.
The sibling without Ray (`modelyard sim serve`) is test_ledger_crash.

The restarted replica must come back on the configured port: Ray Serve 2.60 binds a
direct-ingress port without SO_REUSEADDR, so the killed process's connections, left in
TIME_WAIT on it, made the bind fail and the controller hand out the next port
(`deployments/ingress_bind.py` fixes the bind). The new replica is looked for on every port
of `deployments.ingress.ingress_ports`, so that a regression shows as the wrong port, not
as a hang.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from sqlalchemy import Engine, select

from bench.processes import free_port
from cluster.config.settings import GatewaySettings
from cluster.ledger.database import create_ledger_engine, migrate
from cluster.ledger.keys import KeyStore
from cluster.ledger.schema import reservations
from deployments.ingress import ingress_ports
from tests.integration.ledger_readback import settled_ledger
from tests.integration.test_ledger_crash import one_stream
from tests.integration.up_process import UpProcess
from tests.unit.ledger.helpers import NOW, PEPPER

pytestmark = pytest.mark.integration

QWEN = "qwen/qwen3-coder-flash"
READY_LINE = "Press Ctrl-C to stop."
READY_TIMEOUT_S = 180.0
STREAMS = 30
KILL_AFTER_S = 2.5
#: Serve must have a new gateway replica serving within this (measured: docs/RELIABILITY.md).
SERVE_AGAIN_BOUND_S = 120.0
GATEWAY_TITLE = "ServeReplica:modelyard:gateway"

Outcome = tuple[str | None, Decimal | None, bool]


def cluster_file(
    path: Path, port: int, *, name: str = "gateway-crash-live", grpc_port: int | None = None
) -> Path:
    """One real-time simulated model behind the gateway on `port` (gRPC on `grpc_port`)."""
    gateway: dict[str, object] = {"host": "127.0.0.1", "port": port}
    if grpc_port is not None:
        gateway["grpc_port"] = grpc_port
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "gateway": gateway,
                "ray": {"num_cpus": 4, "virtual_gpus": 4},
                # Real time: streams of 40-280 tokens last seconds, so the kill lands mid-load.
                "models": [{"id": QWEN, "engine": "sim", "sim": {"speedup": 1}}],
            }
        )
    )
    return path


@contextmanager
def up_with_ledger(
    config: Path, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[UpProcess]:
    """`modelyard up --config CONFIG --auth keys` with the ledger at `ledger_url` (the test
    pepper), ready to serve; the whole process group killed at the end."""
    env = {"MODELYARD_KEY_PEPPER": PEPPER.decode(), "MODELYARD_LEDGER_URL": ledger_url}
    monkeypatch.delenv("MODELYARD_LEDGER_URL", raising=False)  # this test's ledger, not another
    monkeypatch.delenv("MODELYARD_KEY_PEPPER", raising=False)
    up = UpProcess(["--config", str(config), "--auth", "keys"], env_defaults=env)
    try:
        assert up.read_until(READY_LINE, READY_TIMEOUT_S), up.tail()
        yield up
    finally:
        up.kill()


def gateway_pids(root_pid: int) -> list[int]:
    """Pids of the gateway replica's worker (Ray titles it `ray::ServeReplica:app:name`)
    among the processes `modelyard up` started."""
    found = []
    for child in psutil.Process(root_pid).children(recursive=True):
        try:
            if GATEWAY_TITLE in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def open_reservations(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(reservations.c.request_id)).scalars())


async def load_then_kill(
    base_url: str, key: str, pid: int, engine: Engine
) -> tuple[list[Outcome], set[str], float]:
    """(stream outcomes, reservations open right after the kill, kill time)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        tasks = [
            asyncio.create_task(
                one_stream(client, key, delay=i * 0.05, max_tokens=40 + (i % 5) * 60)
            )
            for i in range(STREAMS)
        ]
        await asyncio.sleep(KILL_AFTER_S)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        # Read at once: the new replica needs seconds to start, so recovery has not run yet.
        left_open = open_reservations(engine)
        return await asyncio.gather(*tasks), left_open, killed_at


async def serve_again(port: int, key: str, killed_at: float) -> tuple[float, int, list[int]]:
    """(seconds from the kill until a request is answered 200, the port that answered it,
    the statuses of five more requests there). Looks on every port direct ingress may give
    the new replica (`deployments.ingress.ingress_ports`): see the module docstring."""
    body = {"model": QWEN, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    headers = {"authorization": f"Bearer {key}"}
    ports = ingress_ports(GatewaySettings(host="127.0.0.1", port=port))
    async with httpx.AsyncClient(timeout=10) as client:
        answered = None
        while answered is None and time.monotonic() - killed_at < SERVE_AGAIN_BOUND_S:
            for candidate in ports:
                url = f"http://127.0.0.1:{candidate}/api/v1/chat/completions"
                try:
                    reply = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError:
                    continue
                if reply.status_code == 200:
                    answered = candidate
                    break
            await asyncio.sleep(0.1)
        back_after = time.monotonic() - killed_at
        assert answered is not None, "no gateway replica answered after the kill"
        url = f"http://127.0.0.1:{answered}/api/v1/chat/completions"
        more = [(await client.post(url, json=body, headers=headers)).status_code for _ in range(5)]
    return back_after, answered, more


def test_gateway_sigkill_under_ray_loses_and_duplicates_nothing(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_ledger_engine(ledger_url)
    migrate(engine)
    key, info = KeyStore(engine, PEPPER).create("crash", now=NOW, budget=Decimal(1000))
    port = free_port()
    config = cluster_file(tmp_path / "cluster.yaml", port)
    with up_with_ledger(config, ledger_url, monkeypatch) as up:
        (pid,) = gateway_pids(up.process.pid)
        results, left_open, killed_at = asyncio.run(
            load_then_kill(f"http://127.0.0.1:{port}", key, pid, engine)
        )
        back_after, new_port, more = asyncio.run(serve_again(port, key, killed_at))
        new_pids = gateway_pids(up.process.pid)
        assert up.process.poll() is None, up.tail()  # `modelyard up` itself never stopped
    complete = {rid: cost for rid, cost, whole in results if whole and rid is not None}
    cut = [r for r in results if not r[2]]
    print(
        f"gateway SIGKILL under Ray: {len(results)} streams, {len(complete)} fully received, "
        f"{len(cut)} cut, {len(left_open)} reservations open at the kill; served again "
        f"{back_after:.2f} s after the kill, on port {new_port} (configured {port})"
    )
    assert complete and cut, (len(complete), len(cut))  # the kill landed mid-load
    assert left_open, "streams in flight held reservations when the gateway died"
    assert back_after < SERVE_AGAIN_BOUND_S
    assert more == [200] * 5
    assert new_pids and pid not in new_pids  # Serve started a new gateway replica

    ledger = settled_ledger(engine, info.id, timeout_s=0)  # recovery ran at the restart
    engine.dispose()
    rows, left, key_row = ledger.rows, ledger.open_reservations, ledger.key
    ids = [row.request_id for row in rows]
    assert len(ids) == len(set(ids))  # nothing recorded twice
    recorded = {row.request_id: row for row in rows}
    for rid, cost in complete.items():  # every fully received response: one record, its cost
        assert recorded[rid].status == "completed"
        assert Decimal(recorded[rid].cost_nano) / 10**9 == cost
    # Every reservation open at the kill now has its record: only the restarted gateway's
    # recovery writes those (the killed one cannot, no other gateway runs).
    assert left_open <= set(recorded)
    assert all(recorded[rid].status == "failed" for rid in left_open)
    assert left == 0 and key_row.reserved_nano == 0
    completed_nano = sum(r.cost_nano or 0 for r in rows if r.status == "completed")
    assert key_row.spent_nano == completed_nano
    assert {row.status for row in rows} <= {"completed", "failed"}
    assert new_port == port, f"the restarted gateway serves on {new_port}, not {port}"
