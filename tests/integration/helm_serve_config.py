"""Run what the Helm chart renders on a local Ray cluster shaped like the rendered RayCluster.

Run as a subprocess by `test_helm_serve_config.py` (its own Ray, its own RAY_TMPDIR):

    python -m tests.integration.helm_serve_config

It renders the chart (the CPU-only simulator values, a smaller model list, loopback ports)
and plays KubeRay's part without Kubernetes: every Ray process gets the head container's
rendered environment (Serve's ingress mode); one Ray node per pod of each group, started
with that group's rendered rayStartParams (num-cpus, num-gpus, custom resources; CPUs from
the container's limit as KubeRay does); then the rendered serveConfigV2 goes to Serve's
controller as `serve deploy` sends it. One deviation: every node here shares 127.0.0.1, so
Serve's proxy runs on the head only (`EveryNode` would bind one port several times).
Prints one JSON line: application status, where the gateway replica runs, the models the
gateway lists and one chat completion's usage.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx
import yaml

from tests.integration.live import free_port
from tests.unit.helm.chart import load_values, manifests, render

APP = "modelyard"
READY_TIMEOUT_S = 150.0
MODELS = [
    {"id": "minimax/minimax-m1", "sim": {"speedup": 1000}},  # 16 GPUs over two pods
    {"id": "qwen/qwen3-coder-flash", "sim": {"speedup": 1000}},
]
NODE_ARGS: dict[str, Any] = {
    "node_ip_address": "127.0.0.1",
    "object_store_memory": 80 * 1024 * 1024,
}


def _values(port: int, grpc_port: int, proxy_port: int) -> dict[str, Any]:
    values = load_values("cpu-sim")
    values["cluster"]["models"] = MODELS
    values["cluster"]["gateway"] = {
        **values["cluster"].get("gateway", {}),
        "host": "127.0.0.1",
        "port": port,
        "grpc_port": grpc_port,
    }
    values["ray"] = {"serveProxyPort": proxy_port}
    values["workerGroups"][0]["replicas"] = 3  # minimax 2 pods + qwen 1 pod
    return values


def _node_args(group: dict[str, Any]) -> dict[str, Any]:
    """`ray start` arguments of one pod of a rendered group, as KubeRay derives them."""
    params = group["rayStartParams"]
    (container,) = group["template"]["spec"]["containers"]
    limits = container.get("resources", {}).get("limits", {})
    cpus = int(params.get("num-cpus", limits.get("cpu", 1)))
    args: dict[str, Any] = {**NODE_ARGS, "num_cpus": cpus}
    args["num_gpus"] = int(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))
    if "resources" in params:
        # KubeRay's form: a JSON object inside a quoted string, '"{\"name\": 1}"'.
        args["resources"] = json.loads(json.loads(params["resources"]))
    return args


def _wait_running() -> dict[str, Any]:
    from ray import serve

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        app = serve.status().applications.get(APP)
        status = str(app.status) if app is not None else "absent"
        if app is not None and status.endswith("RUNNING"):
            return {
                "status": "RUNNING",
                "deployments": {
                    name: {str(k): int(v) for k, v in d.replica_states.items()}
                    for name, d in app.deployments.items()
                },
            }
        if app is not None and "FAILED" in status:
            return {"status": status, "message": app.message}
        if time.monotonic() > deadline:
            return {"status": f"timeout ({status})"}
        time.sleep(0.5)


def _actor_nodes(class_suffix: str) -> list[str]:
    from ray._private import state

    return [
        info["Address"]["NodeID"]
        for info in state.actors().values()
        if str(info.get("ActorClassName", "")).endswith(class_suffix) and info["State"] == "ALIVE"
    ]


def main() -> dict[str, Any]:
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster
    from ray.serve.schema import ServeDeploySchema

    from deployments.placement import replica_placements

    port, grpc_port, proxy_port = free_port(), free_port(), free_port()
    objs = manifests(render(_values(port, grpc_port, proxy_port)))
    (rayservice,) = [o for o in objs if o["kind"] == "RayService"]
    spec = rayservice["spec"]["rayClusterConfig"]
    serve_config = yaml.safe_load(rayservice["spec"]["serveConfigV2"])
    serve_config["proxy_location"] = "HeadOnly"  # every node shares 127.0.0.1 here

    (head,) = spec["headGroupSpec"]["template"]["spec"]["containers"]
    os.environ.update({e["name"]: e["value"] for e in head["env"] if "value" in e})

    cluster = Cluster(
        initialize_head=True,
        connect=True,
        head_node_args={**_node_args(spec["headGroupSpec"]), "include_dashboard": False},
    )
    try:
        nodes: dict[str, list[str]] = {}
        for group in spec["workerGroupSpecs"]:
            pods = group["replicas"] * group.get("numOfHosts", 1)
            nodes[group["groupName"]] = [
                cluster.add_node(**_node_args(group)).node_id for _ in range(pods)
            ]
        cluster.wait_for_nodes(timeout=60)
        http = serve_config["http_options"]
        serve.start(http_options=http, proxy_location="HeadOnly")
        client = serve.context._get_global_client()
        client.deploy_apps(ServeDeploySchema.model_validate(serve_config))
        report: dict[str, Any] = {"app": _wait_running(), "nodes": nodes}
        if report["app"]["status"] != "RUNNING":
            return report
        report["gateway_nodes"] = _actor_nodes(f"{APP}:gateway")
        report["placements"] = {
            name: [p.model_dump() for p in replica_placements(app_name=APP, deployment_name=name)]
            for name in report["app"]["deployments"]
            if name != "gateway"
        }
        base = f"http://127.0.0.1:{port}"
        models = httpx.get(f"{base}/v1/models", timeout=30).json()
        report["models"] = sorted(m["id"] for m in models["data"])
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            json={
                "model": "qwen/qwen3-coder-flash",
                "messages": [{"role": "user", "content": "hello from the chart"}],
                "max_tokens": 8,
            },
            timeout=60,
        )
        report["chat"] = {"status": reply.status_code, "usage": reply.json().get("usage")}
        return report
    finally:
        # No serve.shutdown(): it waits 30 s for direct-ingress replicas to drain; the
        # whole Ray cluster (and Serve with it) goes away here.
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    print(json.dumps(main()), flush=True)
    sys.exit(0)
