"""One Ray Serve session of the overhead benchmark, in a process of its own.

    python -m deployments.routing.overhead_serve --ingress direct|proxy --ready-file F
        [--no-p2c] [--no-kv-events]

Serve's ingress mode is read from the environment when each Ray process starts, so each
mode needs its own Ray instance; a process per session lets `overhead_bench` measure both
modes side by side in one run. The session is `modelyard up`'s own start path
(`cluster.cli.local_cluster.LocalCluster`) with one simulated model (2 replicas, `speedup`
1e6: a zero-latency engine) behind our placement router under `/`, plus, unless
`--no-p2c`, the same application on Serve's default PowerOfTwoChoices router under `/p2c`.
Extra Serve variables for a knob experiment come from this process's environment (the
raylet inherits it). Once ready it writes `{"placement": URL, "p2c": URL, "proxy": URL}`
to the ready file (each URL is the application's base, prefix included) and serves until
SIGINT or SIGTERM, then stops Serve and Ray.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from cluster.bench.processes import free_port
from cluster.config import parse_config
from cluster.config.settings import ClusterConfig

MODEL = "qwen/qwen3-coder-flash"
SPEEDUP = 1e6
START_TIMEOUT_S = 180.0
P2C_APP = "p2c"


def serve_config(port: int, *, ingress: str, kv_events: bool = True) -> ClusterConfig:
    return parse_config(
        {
            "gateway": {"host": "127.0.0.1", "port": port, "ingress": ingress},
            "ray": {"num_cpus": 8},
            "placement": {"debug_endpoint": True, "kv_events": kv_events},
            "models": [
                {
                    "id": MODEL,
                    "replicas": 2,
                    "reserve_gpus": False,
                    "sim": {"speedup": SPEEDUP},
                }
            ],
        },
        source="overhead bench",
    )


def p2c_app(config: ClusterConfig) -> Any:
    """The same application, its model deployment on Serve's default request router."""
    from ray import serve

    from deployments.app import plan_models
    from deployments.gateway import bind_gateway
    from deployments.model_deployment import ModelReplica
    from deployments.placement import replica_options

    handles = {}
    for model, plan in plan_models(config):
        options = replica_options(model, plan, config.placement)
        del options["request_router_config"]
        handles[model.id] = serve.deployment(**options)(ModelReplica).bind(model, plan, False)
    return bind_gateway(config, handles)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> None:
    from ray import serve

    from cluster.cli.local_cluster import LocalCluster

    config = serve_config(free_port(), ingress=args.ingress, kv_events=not args.no_kv_events)
    with LocalCluster(config, progress=lambda line: print(line, flush=True)) as cluster:
        cluster.start(timeout_s=START_TIMEOUT_S)
        urls = {"placement": cluster.base_url, "proxy": cluster.proxy_url}
        if not args.no_p2c:
            prefix = f"/{P2C_APP}"
            serve.run_many(
                [serve.RunTarget(target=p2c_app(config), name=P2C_APP, route_prefix=prefix)],
                wait_for_applications_running=True,
            )
            urls[P2C_APP] = cluster.app_base(P2C_APP, prefix, timeout_s=START_TIMEOUT_S) + prefix
        for sig in (signal.SIGINT, signal.SIGTERM):  # ray.init installed its own handler
            signal.signal(sig, _interrupt)
        partial = args.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(urls), "utf-8")
        partial.replace(args.ready_file)
        print(f"ready: {urls}", flush=True)
        while True:
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ingress", choices=["direct", "proxy"], required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--no-p2c", action="store_true", help="only the placement app")
    parser.add_argument("--no-kv-events", action="store_true")
    args = parser.parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
