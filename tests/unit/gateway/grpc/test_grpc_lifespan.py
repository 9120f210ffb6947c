"""The gRPC server rides the HTTP app's lifespan and shares its core, key and health."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from bench.processes import free_port
from cluster.config import (
    AuthSettings,
    ClusterConfig,
    GatewaySettings,
    ModelDeployment,
    load_builtin_catalog,
)
from cluster.errors import EngineUnavailable, Unauthenticated
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, user
from cluster.gateway.grpc.lifespan import attach_grpc_server
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
KEY = "sk-lifespan-key"


def config(grpc_port: int | None) -> ClusterConfig:
    return ClusterConfig(
        gateway=GatewaySettings(grpc_port=grpc_port),
        models=[ModelDeployment(id=QWEN)],
        auth=AuthSettings(api_key_sha256=[hashlib.sha256(KEY.encode()).hexdigest()]),
    )


async def test_grpc_and_http_share_one_core() -> None:
    port = free_port()
    cfg = config(port)
    served = cfg.served_models(load_builtin_catalog())
    backend = EngineBackend({QWEN: SimEngine(served[0], replica_id="ls-0", clock=VirtualClock())})
    await backend.start()
    app = build_gateway_app(cfg, served, backend)
    attach_grpc_server(app, cfg.gateway)
    target = f"127.0.0.1:{port}"
    try:
        async with app.router.lifespan_context(app):
            assert app.state.grpc_server.port == port
            async with ModelyardClient(target, api_key=KEY) as client:
                request = ChatRequest(model=QWEN, messages=[user("hi")], max_tokens=3)
                chunks = [c async for c in client.chat(request, deadline_s=10)]
                assert chunks[-1].usage.completion_tokens == 3
            async with ModelyardClient(target, api_key="sk-wrong") as client:
                with pytest.raises(Unauthenticated):
                    await client.list_models(deadline_s=5)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
                metrics = (await http.get("/metrics")).text
            line = next(
                row
                for row in metrics.splitlines()
                if row.startswith("modelyard_requests_total{") and 'status="200"' in row
            )
            assert line.endswith(" 1.0"), line  # the gRPC call, counted by the shared core
        async with ModelyardClient(target, api_key=KEY) as client:
            with pytest.raises(EngineUnavailable):
                await client.list_models(deadline_s=2)
    finally:
        await backend.shutdown()


def test_without_a_grpc_port_nothing_is_attached() -> None:
    cfg = config(None)
    served = cfg.served_models(load_builtin_catalog())
    app = build_gateway_app(cfg, served, EngineBackend({}))
    before = app.router.lifespan_context
    attach_grpc_server(app, cfg.gateway)
    assert app.router.lifespan_context is before
