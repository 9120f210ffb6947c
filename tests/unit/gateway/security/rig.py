"""The real gateway app on loopback for the security tests: `build_gateway_app` over one
simulated model (virtual clock), the gRPC API attached as a gateway replica attaches it,
served by uvicorn with the TLS options of `gateway.tls` (`cluster.gateway.tls`). The admin
listener, when `gateway.admin_port` is set, is started by the app itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from bench.processes import free_port
from cluster.config import ClusterConfig, ModelDeployment, load_builtin_catalog
from cluster.gateway.grpc.lifespan import attach_grpc_server
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from cluster.gateway.tls import uvicorn_tls
from deployments.engines.sim import SimEngine, VirtualClock

MODEL = "qwen/qwen3-coder-flash"


@dataclass
class Served:
    config: ClusterConfig
    app: FastAPI

    @property
    def scheme(self) -> str:
        return "https" if self.config.gateway.tls is not None else "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.config.gateway.port}"

    @property
    def admin_base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.config.gateway.admin_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.config.gateway.grpc_port}"


def gateway_config(grpc: bool = False, admin: bool = False, **gateway: Any) -> ClusterConfig:
    """One simulated model; the ports picked free on loopback."""
    ports = {"port": free_port()}
    if grpc:
        ports["grpc_port"] = free_port()
    if admin:
        ports["admin_port"] = free_port()
    return ClusterConfig.model_validate(
        {"gateway": {**ports, **gateway}, "models": [ModelDeployment(id=MODEL)]}
    )


@contextlib.asynccontextmanager
async def serving(
    config: ClusterConfig, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Served]:
    served = config.served_models(load_builtin_catalog())
    engine = SimEngine(served[0], replica_id="sec-0", clock=VirtualClock())
    backend = EngineBackend({MODEL: engine})
    await backend.start()
    app = build_gateway_app(config, served, backend, environ=environ or {})
    attach_grpc_server(app, config.gateway)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=config.gateway.port,
            log_level="warning",
            lifespan="on",
            **uvicorn_tls(config.gateway.tls),
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the gateway stopped before it started")
            await asyncio.sleep(0.01)
        yield Served(config, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await backend.shutdown()
