"""Test harness: an in-process gRPC front door on 127.0.0.1 over the real core and real SimEngines.

`qwen/qwen3-coder-flash` runs on a started SimEngine (fast clock unless a test asks for a
slow one); `mistralai/devstral-small` is served but its engine is never started, so it is
unavailable — the real path to UNAVAILABLE and to a NOT_SERVING health status.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace

from cluster.config import ModelDeployment, ServedModel, SimSettings, load_builtin_catalog
from cluster.gateway.auth import StaticKeyAuthenticator
from cluster.gateway.grpc.client import ModelyardClient
from cluster.gateway.grpc.server import GrpcServer, build_grpc_server
from cluster.gateway.service.backend import EngineBackend, ModelBackend
from cluster.gateway.service.gateway import GatewayService
from cluster.gateway.telemetry import GatewayMetrics, RequestObserver
from deployments.engines.sim import RealClock, SimEngine

API_KEY = "sk-grpc-unit-test-key"
QWEN = "qwen/qwen3-coder-flash"
DEVSTRAL = "mistralai/devstral-small"
FAST = 2000.0  # simulated seconds per wall second
MAX_MESSAGE_BYTES = 64 * 1024


def served(model_id: str, speedup: float = FAST) -> ServedModel:
    spec = load_builtin_catalog().find(model_id)
    assert spec is not None
    return ServedModel(
        spec=spec, deployment=ModelDeployment(id=model_id, sim=SimSettings(speedup=speedup))
    )


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Poll `predicate` every 20 ms; fail naming `what` after `timeout_s`."""
    for _ in range(int(timeout_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting until {what}")


@dataclass
class Harness:
    server: GrpcServer
    client: ModelyardClient  # holds the right key
    engine: SimEngine  # qwen's
    service: GatewayService

    def client_with(self, api_key: str | None) -> ModelyardClient:
        return ModelyardClient(self.server.target, api_key=api_key)


async def start_harness(
    backend: ModelBackend | None = None, *, speedup: float = FAST
) -> tuple[Harness, EngineBackend]:
    qwen, devstral = served(QWEN, speedup), served(DEVSTRAL, speedup)
    engine = SimEngine(qwen, replica_id="grpc-qwen-0", clock=RealClock(speedup))
    idle = SimEngine(devstral, replica_id="grpc-devstral-0", clock=RealClock(speedup))
    await engine.start()
    engines = EngineBackend({QWEN: engine, DEVSTRAL: idle})
    observer = RequestObserver(GatewayMetrics(), trace.NoOpTracer())
    service = GatewayService([qwen, devstral], backend or engines, observer)
    server = build_grpc_server(
        service,
        StaticKeyAuthenticator([hashlib.sha256(API_KEY.encode()).hexdigest()]),
        "127.0.0.1",
        0,
        health_probe=engines.health,
        max_message_bytes=MAX_MESSAGE_BYTES,
    )
    await server.start()
    client = ModelyardClient(server.target, api_key=API_KEY)
    return Harness(server, client, engine, service), engines


async def stop_harness(harness: Harness, engines: EngineBackend) -> None:
    await harness.client.close()
    await harness.server.stop(grace=1.0)
    await engines.shutdown()
