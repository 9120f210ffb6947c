"""Fault: a model replica's actor killed mid-stream under load, with the ledger on.

Run as a subprocess by `test_faults_live.py` (its own Ray, its own RAY_TMPDIR):

    python -m tests.integration.fault_replica_kill

`modelyard up`'s start path (`LocalCluster`) with one simulated model on 3 replicas, each
running at most 4 sequences (so a replica holds 4 running requests and up to 4 waiting in
its engine queue), and the ledger on a SQLite file. 36 concurrent requests (half
streamed) with answers of up to 200 tokens at the simulator's real-time speed; once the
busiest replica holds more than 4 (some waiting), its actor is killed (`ray.kill`). Then
6 more requests, and the time until Serve runs 3 replicas again. Prints one JSON line:
every client outcome, the routing decisions, the ledger's records and the timings.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.processes import free_port
from cluster.config import parse_config
from deployments.launcher import LocalCluster
from tests.integration.fault_rig import QWEN, chat, ledger_rows, routing, use_ledger, wait_replaced

REQUESTS = 36
AFTER = 6
REPLICAS = 3
MAX_NUM_SEQS = 4
CLIENT_BOUND_S = 60.0


def config(port: int) -> Any:
    return parse_config(
        {
            "name": "fault-kill",
            "gateway": {"host": "127.0.0.1", "port": port},
            "ray": {"num_cpus": 6},
            "routing": {"debug_endpoint": True},
            "models": [
                {
                    "id": QWEN,
                    "replicas": REPLICAS,
                    "reserve_gpus": False,
                    "sim": {"speedup": 1.0, "max_num_seqs": MAX_NUM_SEQS},
                }
            ],
        },
        source="fault_replica_kill",
    )


def busiest(base: str) -> tuple[str, int] | None:
    replicas = routing(base)[QWEN]["replicas"]
    name, info = max(replicas.items(), key=lambda kv: kv[1]["in_flight"])
    return (name, info["in_flight"]) if info["in_flight"] > MAX_NUM_SEQS else None


async def load_and_kill(base: str) -> dict[str, Any]:
    import ray

    tag = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_BOUND_S, limits=limits) as client:
        tasks = [
            asyncio.create_task(
                chat(
                    client, i, QWEN, f"Request {tag}-{i}: tell a story.", 60 + (i * 37) % 141,
                    stream=i % 2 == 0,
                )
            )
            for i in range(REQUESTS)
        ]  # fmt: skip
        sent = time.monotonic()
        victim: tuple[str, int] | None = None
        while victim is None and time.monotonic() - sent < 10:
            await asyncio.sleep(0.05)
            victim = await asyncio.to_thread(busiest, base)
        assert victim is not None, "no replica ever held waiting requests"
        await asyncio.sleep(0.2)  # the running ones are mid-stream
        killed_at = time.monotonic()
        ray.kill(ray.get_actor(victim[0], namespace="serve"), no_restart=True)
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), CLIENT_BOUND_S + 10)
        decisions = (await asyncio.to_thread(routing, base))[QWEN]["decisions"]
        after = await asyncio.gather(
            *(
                chat(client, REQUESTS + i, QWEN, f"After {tag}-{i}: hello?", 8, stream=i % 2 == 0)
                for i in range(AFTER)
            )
        )
    return {
        "victim": victim[0],
        "victim_in_flight": victim[1],
        "killed_at": killed_at,
        "sent_at": sent,
        "outcomes": [o.report() for o in outcomes],
        "after": [o.report() for o in after],
        "decisions": [{k: d[k] for k in ("request_id", "replica_id")} for d in decisions],
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fault-kill-") as tmp:
        url = use_ledger(Path(tmp))
        cluster = LocalCluster(config(free_port()), object_store_bytes=80 * 1024 * 1024)
        started = time.monotonic()
        cluster.start(timeout_s=120)
        try:
            report = asyncio.run(load_and_kill(cluster.base_url))
            deployment = cluster.served[0].deployment_name
            report["replaced_after_s"] = wait_replaced(
                cluster.base_url,
                deployment,
                report["victim"],
                report["killed_at"],
                replicas=REPLICAS,
            )
            report["replicas_after"] = sorted(routing(cluster.base_url)[QWEN]["replicas"])
        finally:
            cluster.stop()
        report["ledger"] = ledger_rows(url)
        report["cluster_s"] = time.monotonic() - started
    return report


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    sys.exit(0)
