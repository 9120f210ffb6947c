"""A real gateway for the property-based suites: HTTP (uvicorn) and gRPC on 127.0.0.1.

The app is exactly what `make up` serves in a gateway replica — `build_gateway_app` with
the gRPC front door attached — over the in-process `EngineBackend` with real simulator
engines on a virtual clock (answers take no wall time), instead of Ray Serve. It runs on
its own event loop in a background thread, so tests drive it with plain blocking clients
(httpx, requests for schemathesis, a synchronous gRPC channel) and every answer really
crosses a socket. The four catalog models are served: a reasoning model with tool calls in
its text (MiniMax-M1), LoRA adapters (Mistral Small), and two plain ones.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from bench.processes import free_port
from cluster.config import ClusterConfig, GatewaySettings, ModelDeployment, load_builtin_catalog
from cluster.gateway.grpc.lifespan import attach_grpc_server
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock

MODELS = (
    "qwen/qwen3-coder-flash",
    "minimax/minimax-m1",
    "mistralai/devstral-small",
    "casperhansen/mistral-small-24b-instruct-2501-awq",
)
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class LiveGateway:
    base_url: str
    grpc_target: str


@contextmanager
def live_gateway(start_timeout_s: float = 20.0) -> Iterator[LiveGateway]:
    port = free_port()
    grpc_port = free_port()
    while grpc_port == port:
        grpc_port = free_port()
    config = ClusterConfig(
        gateway=GatewaySettings(
            host="127.0.0.1",
            port=port,
            grpc_port=grpc_port,
            max_body_bytes=MAX_BODY,
            request_timeout_s=30.0,
            stall_timeout_s=10.0,
        ),
        models=[ModelDeployment(id=m) for m in MODELS],
    )
    served = config.served_models(load_builtin_catalog())
    server: uvicorn.Server | None = None
    failed: list[BaseException] = []

    async def main() -> None:
        nonlocal server
        engines = {
            m.id: SimEngine(m, replica_id=f"fuzz-{i}", clock=VirtualClock())
            for i, m in enumerate(served)
        }
        backend = EngineBackend(engines)
        await backend.start()
        app = build_gateway_app(config, served, backend)
        attach_grpc_server(app, config.gateway)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        try:
            await server.serve()
        finally:
            await backend.shutdown()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name="fuzz-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while server is None or not server.started:
        if failed or time.monotonic() > deadline:
            raise RuntimeError(f"the fuzz gateway did not start: {failed}")
        time.sleep(0.02)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
