"""One Ray Serve session of the overhead benchmark, in a process of its own.

    python -m bench.overhead_serve --ingress direct|proxy --ready-file F
        [--no-p2c] [--no-floor] [--floor-chunks N] [--no-kv-events]

Serve's ingress mode is read from the environment when each Ray process starts, so each
mode needs its own Ray instance; a process per session lets `overhead_bench` measure both
modes side by side in one run. The session is `modelyard up`'s own start path
(`deployments.launcher.LocalCluster`) with one simulated model (2 replicas, `speedup`
1e6: a zero-latency engine) behind our placement router under `/`, plus, unless
`--no-p2c`, the same application on Serve's default PowerOfTwoChoices router under `/p2c`,
and unless `--no-floor`, Serve's floor under `/floor`: a trivial ingress deployment that
echoes the request body (`POST /floor/ingress`), or first passes it through one handle
call to a trivial second deployment (`POST /floor/hop`), or gets it back from there as a
stream of as many chunks as the simulator sends for the benchmark's requests
(`POST /floor/stream`) — what Serve itself costs with no application code. Extra Serve
variables for a knob experiment come from this process's environment (the raylet
inherits it). Once ready it writes `{"placement": URL, "p2c": URL,
"floor": URL, "proxy": URL}` to the ready file (each URL is the application's base, prefix
included) and serves until SIGINT or SIGTERM, then stops Serve and Ray.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import FrameType
from typing import Any

from bench.processes import free_port
from cluster.config import parse_config
from cluster.config.settings import ClusterConfig

MODEL = "qwen/qwen3-coder-flash"
SPEEDUP = 1e6
START_TIMEOUT_S = 180.0
P2C_APP = "p2c"
FLOOR_APP = "floor"


#: Chunks the floor's `/stream` sends over the hop by default: what the simulator streams
#: for a request with `max_tokens` 4 (one per token, then one with the usage).
FLOOR_CHUNKS = 5


class FloorLeaf:
    """Second deployment of the floor app: returns what it is given, whole or in chunks."""

    async def __call__(self, body: bytes) -> bytes:
        return body

    async def stream(self, body: bytes, chunks: int) -> AsyncIterator[bytes]:
        step = -(-len(body) // chunks)
        for i in range(chunks):
            yield body[i * step : (i + 1) * step]


class FloorIngress:
    """Ingress of the floor app: echoes the body; on `/hop` through one call to
    `FloorLeaf`, on `/stream` through one streamed call of `chunks` chunks."""

    def __init__(self, leaf: Any, chunks: int) -> None:
        self._leaf = leaf
        self._streaming = leaf.options(stream=True)
        self._chunks = chunks

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        body: bytes = await request.body()
        if request.url.path.endswith("/hop"):
            body = await self._leaf.remote(body)
        elif request.url.path.endswith("/stream"):
            parts = self._streaming.stream.remote(body, self._chunks)
            body = b"".join([part async for part in parts])
        return Response(body, media_type="application/json")


def floor_app(chunks: int) -> Any:
    from ray import serve

    leaf = serve.deployment(name="floor-leaf", ray_actor_options={"num_cpus": 0})(FloorLeaf)
    ingress = serve.deployment(
        name="floor-ingress", max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0}
    )(FloorIngress)
    return ingress.bind(leaf.bind(), chunks)


def serve_config(port: int, *, ingress: str, kv_events: bool = True) -> ClusterConfig:
    return parse_config(
        {
            "gateway": {"host": "127.0.0.1", "port": port, "ingress": ingress},
            "ray": {"num_cpus": 8},
            "routing": {"debug_endpoint": True, "kv_events": kv_events},
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
        options = replica_options(model, plan, config.routing)
        del options["request_router_config"]
        handles[model.id] = serve.deployment(**options)(ModelReplica).bind(model, plan, False)
    return bind_gateway(config, handles)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> None:
    from ray import serve

    from deployments.launcher import LocalCluster

    config = serve_config(free_port(), ingress=args.ingress, kv_events=not args.no_kv_events)
    with LocalCluster(config, progress=lambda line: print(line, flush=True)) as cluster:
        cluster.start(timeout_s=START_TIMEOUT_S)
        urls = {"placement": cluster.base_url, "proxy": cluster.proxy_url}
        extra = {} if args.no_p2c else {P2C_APP: p2c_app(config)}
        extra |= {} if args.no_floor else {FLOOR_APP: floor_app(args.floor_chunks)}
        for name, app in extra.items():
            prefix = f"/{name}"
            serve.run_many(
                [serve.RunTarget(target=app, name=name, route_prefix=prefix)],
                wait_for_applications_running=True,
            )
            urls[name] = cluster.app_base(name, prefix, timeout_s=START_TIMEOUT_S) + prefix
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
    parser.add_argument("--no-p2c", action="store_true", help="no app on Serve's router")
    parser.add_argument("--no-floor", action="store_true", help="no trivial floor app")
    parser.add_argument(
        "--floor-chunks", type=int, default=FLOOR_CHUNKS, help="chunks of /floor/stream"
    )
    parser.add_argument("--no-kv-events", action="store_true")
    args = parser.parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
