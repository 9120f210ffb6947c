"""Fault: a Ray worker node lost, on a `ray.cluster_utils.Cluster`, with the ledger on.

Run as a subprocess by `test_faults_live.py` (its own Ray, its own RAY_TMPDIR):

    python -m tests.integration.fault_node_loss

Nodes (all on 127.0.0.1): a head declaring `ingress` (the gateway is pinned there with
`gateway.ray_resources`), worker A declaring `pool_a` and worker B declaring `pool_b`; model
A (qwen) is pinned to `pool_a` and model B (mistral) to `pool_b` with
`models[].ray_resources`, both on the simulator. The app is `build_app(config)`, reached
through Serve's proxy on the head. Clients (`Traffic`) send B requests back to back (two
at a time, streamed and not) and probe A every 0.2 s. Then worker A is killed without notice
(`remove_node(allow_graceful=False)`: every process of the node SIGKILLed) and a
replacement node declaring `pool_a` is added, as a node autoscaler would. A counts as
recovered when an A request sent after its old replica was gone (no longer alive in Ray's
actor table) has been answered. The head runs
Ray's node health check every second (3 misses: dead), instead of the default 5 s x 5,
to keep the test short. Prints one JSON line: every B outcome, the A probes, the nodes
of A's replica before and after, and the timings.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.processes import free_port
from cluster.config import parse_config
from cluster.config.catalog import load_builtin_catalog
from deployments.app import APP_NAME, build_app
from deployments.ingress import serve_environment
from tests.integration.fault_rig import (
    MISTRAL,
    QWEN,
    Outcome,
    chat,
    ledger_rows,
    replica_states,
    use_ledger,
)

NODE_ARGS: dict[str, Any] = {
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 80 * 1024 * 1024,
}
HEAD_SYSTEM_CONFIG = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
STEADY_S = 3.0
AFTER_RECOVERY_S = 2.0
RECOVERY_BOUND_S = 60.0


def config(port: int) -> Any:
    return parse_config(
        {
            "name": "fault-node",
            "gateway": {
                "host": "127.0.0.1",
                "port": port,
                "ingress": "proxy",
                "ray_resources": {"ingress": 1},
            },
            "models": [
                {
                    "id": QWEN,
                    "reserve_gpus": False,
                    "ray_resources": {"pool_a": 1},
                    "sim": {"speedup": 5.0},
                },
                {
                    "id": MISTRAL,
                    "reserve_gpus": False,
                    "ray_resources": {"pool_b": 1},
                    "sim": {"speedup": 5.0},
                },
            ],
        },
        source="fault_node_loss",
    )


def actor_nodes(deployment: str) -> list[str]:
    """Node ids of the live replica actors of `deployment`."""
    import ray

    table = ray._private.state.actors()  # type: ignore[attr-defined]
    return sorted(
        str(info["Address"]["NodeID"])
        for info in table.values()
        if info.get("State") == "ALIVE"
        and f"#{deployment}#" in str(info.get("Name", ""))
        and info.get("Address")
    )


def wait_running(deployments: list[str], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(replica_states(APP_NAME, d) != {"RUNNING": 1} for d in deployments):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{deployments} not RUNNING")
        time.sleep(0.2)


class Traffic:
    """Clients on their own thread and event loop (Ray's `add_node` must run on the main
    thread): B requests back to back on two lanes (streamed and not) and one A probe at a
    time, 0.2 s apart, until `stop` is set."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.b: list[Outcome] = []
        self.a: list[Outcome] = []
        self.stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        self._thread.join(RECOVERY_BOUND_S)
        assert not self._thread.is_alive(), "a client hung"

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=RECOVERY_BOUND_S) as client:
            await asyncio.gather(self._b(client, True), self._b(client, False), self._a(client))

    async def _b(self, client: httpx.AsyncClient, stream: bool) -> None:
        while not self.stop.is_set():
            prompt = f"B {uuid.uuid4().hex}: hello?"
            self.b.append(await chat(client, len(self.b), MISTRAL, prompt, 16, stream=stream))

    async def _a(self, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            prompt = f"A {uuid.uuid4().hex}"
            self.a.append(await chat(client, len(self.a), QWEN, prompt, 4, stream=False))
            await asyncio.sleep(0.2)

    def first_a_ok_after(self, since: float) -> float | None:
        """When the first A probe sent after `since` came back answered."""
        return next((o.ended_at for o in list(self.a) if o.started_at > since and o.ok), None)


def wait_gone(deployment: str, node_id: str, since: float) -> float:
    """When Ray no longer lists a live replica of `deployment` on `node_id` (its worker
    processes notice the dead raylet and exit; the GCS marks the actor dead)."""
    while node_id in actor_nodes(deployment):
        if time.monotonic() > since + RECOVERY_BOUND_S:
            raise TimeoutError(f"{deployment} still alive on the lost node")
        time.sleep(0.05)
    return time.monotonic()


def scenario(base: str, cluster: Any, worker_a: Any, deployment_a: str) -> dict[str, Any]:
    traffic = Traffic(base)
    traffic.start()
    try:
        time.sleep(STEADY_S)
        removed_at = time.monotonic()
        cluster.remove_node(worker_a, allow_graceful=False)
        replacement = cluster.add_node(**NODE_ARGS, num_cpus=1, resources={"pool_a": 1})
        added_at = time.monotonic()
        # Recovered: an A request sent after the old replica was gone has been answered.
        gone_at = wait_gone(deployment_a, worker_a.node_id, removed_at)
        recovered_at: float | None = None
        while recovered_at is None and time.monotonic() < removed_at + RECOVERY_BOUND_S:
            time.sleep(0.1)
            recovered_at = traffic.first_a_ok_after(gone_at)
        time.sleep(AFTER_RECOVERY_S)
    finally:
        traffic.join()
    return {
        "removed_at": removed_at,
        "added_after_s": added_at - removed_at,
        "gone_after_s": gone_at - removed_at,
        "recovered_after_s": None if recovered_at is None else recovered_at - removed_at,
        "replacement_node": replacement.node_id,
        "b": [o.report() for o in traffic.b],
        "a": [o.report() for o in traffic.a],
    }


def main() -> dict[str, Any]:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    settings = config(free_port())
    os.environ.update(serve_environment(settings.gateway))  # every node's processes read it
    catalog = load_builtin_catalog()
    served = {m.id: m.deployment_name for m in settings.served_models(catalog)}
    with tempfile.TemporaryDirectory(prefix="fault-node-") as tmp:
        url = use_ledger(Path(tmp))
        started = time.monotonic()
        cluster = Cluster(
            initialize_head=True,
            connect=True,
            head_node_args={
                **NODE_ARGS,
                "num_cpus": 2,
                "resources": {"ingress": 1},
                "include_dashboard": False,
                "_system_config": HEAD_SYSTEM_CONFIG,
            },
        )
        try:
            worker_a = cluster.add_node(**NODE_ARGS, num_cpus=1, resources={"pool_a": 1})
            worker_b = cluster.add_node(**NODE_ARGS, num_cpus=1, resources={"pool_b": 1})
            cluster.wait_for_nodes(timeout=60)
            gateway = settings.gateway
            serve.start(
                http_options={"host": gateway.host, "port": gateway.port},
                proxy_location="HeadOnly",
            )
            serve.run_many(
                [serve.RunTarget(target=build_app(settings), name=APP_NAME, route_prefix="/")],
                wait_for_ingress_deployment_creation=False,
                wait_for_applications_running=False,
            )
            wait_running(list(served.values()))
            before = {model: actor_nodes(name) for model, name in served.items()}
            base = f"http://{gateway.host}:{gateway.port}"
            report = scenario(base, cluster, worker_a, served[QWEN])
            report["nodes"] = {
                "head": cluster.head_node.node_id,
                "a": worker_a.node_id,
                "b": worker_b.node_id,
            }
            report["before"] = before
            report["after"] = {model: actor_nodes(name) for model, name in served.items()}
        finally:
            if ray.is_initialized():
                serve.shutdown()  # type: ignore[no-untyped-call]
                ray.shutdown()
            cluster.shutdown()
        report["ledger"] = ledger_rows(url)
        report["cluster_s"] = time.monotonic() - started
    return report


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    sys.exit(0)
