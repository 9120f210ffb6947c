"""Deploy MiniMax-M1 (TP8 x PP2) on a simulated 3-node Ray cluster and report the placement.

Run as a subprocess by `test_multinode_placement.py` (its own Ray, its own RAY_TMPDIR, so it
never meets the session cluster of the other integration tests):

    python -m tests.integration.multinode_placement

Nodes: a head with no GPUs and two workers declaring 8 GPUs each (Ray schedules declared
resources exactly as real ones). The model runs on the simulator. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from cluster.config import parse_config
from cluster.config.catalog import load_builtin_catalog
from cluster.engine import EngineRequest
from cluster.placement import plan_for

MODEL_ID = "minimax/minimax-m1"
APP = "multinode"
READY_TIMEOUT_S = 120.0
NODE_ARGS: dict[str, Any] = {
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 80 * 1024 * 1024,
}


def _wait_running(deployment: str) -> dict[str, int]:
    from ray import serve

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        app = serve.status().applications.get(APP)
        if app is not None:
            states = app.deployments.get(deployment)
            if states is not None:
                replicas = {str(k): int(v) for k, v in states.replica_states.items()}
                if str(app.status) in ("RUNNING", "ApplicationStatus.RUNNING") or replicas.get(
                    "RUNNING"
                ):
                    return replicas
                if "FAILED" in str(app.status):
                    raise RuntimeError(f"deploy failed: {app.message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{deployment} not RUNNING after {READY_TIMEOUT_S:.0f}s")
        time.sleep(0.25)


async def _one_request(handle: Any, model: Any) -> dict[str, Any]:
    from deployments.handle_backend import HandleBackend

    backend = HandleBackend({model.id: handle})
    request = EngineRequest(
        request_id="multinode-1",
        model=model.id,
        messages=[{"role": "user", "content": "placement check"}],
        max_tokens=8,
    )
    chunks = [chunk async for chunk in backend.generate(model, request)]
    usage = chunks[-1].usage
    return {
        "chunks": len(chunks),
        "replica_id": chunks[0].replica_id,
        "completion_tokens": usage.completion_tokens if usage else None,
    }


def main() -> dict[str, Any]:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from deployments.model_deployment import bind_model
    from deployments.placement import replica_placements

    config = parse_config(
        {
            "ray": {"gpus_per_node": 8},
            "models": [{"id": MODEL_ID, "sim": {"speedup": 1000}}],
        }
    )
    model = config.served_models(load_builtin_catalog())[0]
    plan = plan_for(model, config.ray)

    cluster = Cluster(
        initialize_head=True,
        connect=True,
        head_node_args={**NODE_ARGS, "num_cpus": 2, "num_gpus": 0, "include_dashboard": False},
    )
    try:
        workers = [cluster.add_node(**NODE_ARGS, num_cpus=2, num_gpus=8) for _ in range(2)]
        cluster.wait_for_nodes(timeout=60)
        serve.start(proxy_location="Disabled")
        serve.run_many(
            [serve.RunTarget(target=bind_model(model, plan), name=APP, route_prefix=None)],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
        replicas = _wait_running(model.deployment_name)
        handle = serve.get_deployment_handle(model.deployment_name, app_name=APP)
        answer = asyncio.run(_one_request(handle, model))
        placements = replica_placements(app_name=APP, deployment_name=model.deployment_name)
        return {
            "replica_states": replicas,
            "head_node": cluster.head_node.node_id,
            "worker_nodes": [w.node_id for w in workers],
            "plan": plan.model_dump(),
            "placements": [p.model_dump() for p in placements],
            "answer": answer,
        }
    finally:
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    sys.exit(0)
