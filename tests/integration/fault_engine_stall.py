"""Fault: an engine that stops making progress (its step loop frozen), with the ledger on.

Run as a subprocess by `test_faults_live.py` (its own Ray, its own RAY_TMPDIR):

    python -m tests.integration.fault_engine_stall

One simulated model on 2 replicas with the stall fault armed (`sim.stall_marker`, fault
injection: a request carrying the marker freezes its replica's step loop once it has
produced its first tokens), the progress watchdog at `health.stall_after_s` 2 with Serve
checking every 0.5 s, and the gateway's own stall watchdog (`gateway.stall_timeout_s`) at
30 s, so that the replica's watchdog is the one that acts; the simulator runs at a quarter
of real time so streams last seconds. Four streams run; then the
marked stream starts on one replica (the victim) and freezes it; four short requests are
sent right after (some are routed to the frozen replica). The script records when each
client ends, when Serve runs a new replica in place of the victim and the gateway's
router knows it, then sends 6 more requests. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.processes import free_port
from cluster.config import parse_config
from deployments.launcher import LocalCluster
from tests.integration.fault_rig import QWEN, chat, ledger_rows, routing, use_ledger, wait_replaced

MARKER = "@@fault-injection-stall@@"
REPLICAS = 2
STALL_AFTER_S = 2.0
CHECK_PERIOD_S = 0.5
GATEWAY_STALL_S = 30.0
LONG = 4
DURING = 4
AFTER = 6


def config(port: int) -> Any:
    return parse_config(
        {
            "name": "fault-stall",
            "gateway": {"host": "127.0.0.1", "port": port, "stall_timeout_s": GATEWAY_STALL_S},
            "ray": {"num_cpus": 5},
            "routing": {"debug_endpoint": True},
            "models": [
                {
                    "id": QWEN,
                    "replicas": REPLICAS,
                    "reserve_gpus": False,
                    "sim": {"speedup": 0.25, "stall_marker": MARKER},
                    "health": {
                        "stall_after_s": STALL_AFTER_S,
                        "check_period_s": CHECK_PERIOD_S,
                        "check_timeout_s": 2.0,
                    },
                }
            ],
        },
        source="fault_engine_stall",
    )


async def scenario(base: str, deployment: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        long_runs = [
            asyncio.create_task(
                chat(client, i, QWEN, f"Long {tag}-{i}: a long story.", 1000, stream=True)
            )
            for i in range(LONG)
        ]
        await asyncio.sleep(1.0)  # the long streams are running on both replicas
        poison_task = asyncio.create_task(
            chat(client, LONG, QWEN, f"Poison {tag} {MARKER}", 1000, stream=True)
        )
        poison_id, stalled_at = await _wait_routed(base)
        await asyncio.sleep(0.3)  # its first tokens come with the simulator's next step
        during = [
            asyncio.create_task(
                chat(client, LONG + 1 + i, QWEN, f"During {tag}-{i}: hi?", 8, stream=i % 2 == 0)
            )
            for i in range(DURING)
        ]
        decisions = (await asyncio.to_thread(routing, base))[QWEN]["decisions"]
        victim = next(d["replica_id"] for d in decisions if d["request_id"] == poison_id)
        replaced_s = await asyncio.to_thread(
            partial(wait_replaced, replicas=REPLICAS), base, deployment, victim, stalled_at
        )
        outcomes = await asyncio.wait_for(asyncio.gather(*long_runs, poison_task, *during), 60)
        decisions = (await asyncio.to_thread(routing, base))[QWEN]["decisions"]
        after = await asyncio.gather(
            *(
                chat(client, 100 + i, QWEN, f"After {tag}-{i}: hello?", 8, stream=i % 2 == 0)
                for i in range(AFTER)
            )
        )
    return {
        "victim": victim,
        "poison_id": poison_id.removesuffix("-0"),
        "stalled_at": stalled_at,
        "replaced_after_s": replaced_s,
        "outcomes": [o.report() for o in outcomes],
        "after": [o.report() for o in after],
        "decisions": [{k: d[k] for k in ("request_id", "replica_id")} for d in decisions],
    }


async def _wait_routed(base: str) -> tuple[str, float]:
    """The engine request id of the poison request and when its routing was seen (the
    stall begins with its first tokens, a simulator step later). Nothing else is sent
    meanwhile, so the newest decision is the poison's."""
    before = time.monotonic()
    while time.monotonic() - before < 10:
        decisions = (await asyncio.to_thread(routing, base))[QWEN]["decisions"]
        if len(decisions) > LONG:
            return str(decisions[-1]["request_id"]), time.monotonic()
        await asyncio.sleep(0.02)
    raise TimeoutError("the poison request was not routed")


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fault-stall-") as tmp:
        url = use_ledger(Path(tmp))
        cluster = LocalCluster(config(free_port()), object_store_bytes=80 * 1024 * 1024)
        started = time.monotonic()
        cluster.start(timeout_s=120)
        try:
            deployment = cluster.served[0].deployment_name
            report = asyncio.run(scenario(cluster.base_url, deployment))
        finally:
            cluster.stop()
        report["ledger"] = ledger_rows(url)
        report["cluster_s"] = time.monotonic() - started
    return report


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    sys.exit(0)
