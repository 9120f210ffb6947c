"""`build_grpc_server`: the gRPC front door — Inference, health and reflection on one port.

- `modelyard.v1.Inference` (`InferenceServicer`) over the shared `GatewayService`;
- `grpc.health.v1.Health`: "" (the whole server) and "modelyard.v1.Inference" are SERVING
  while the server runs; each served model id is SERVING or NOT_SERVING by the backend's
  health probe, refreshed every `health_interval_s`; all turn NOT_SERVING when stopping;
- server reflection (grpcurl, grpcui, Postman list and call the API without the .proto).

Health and reflection need no API key (probes and tooling); Inference calls do when keys are
configured. Messages larger than `max_message_bytes` (the gateway's `max_body_bytes`) are
refused by gRPC with RESOURCE_EXHAUSTED, as HTTP answers 413. `SO_REUSEPORT` lets several
gateway replicas on one node serve the same port (the kernel spreads connections).
With `tls` (`gateway.tls`) the port is served over TLS (`cluster.gateway.tls`, mutual TLS
with a client CA); plaintext otherwise (TLS then belongs to the mesh or ingress in front).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from cluster.config.gateway_security import TlsSettings
from cluster.gateway.auth import Authenticator
from cluster.gateway.grpc.gen.modelyard.v1 import inference_pb2
from cluster.gateway.grpc.servicer import InferenceServicer
from cluster.gateway.grpc.stubs import add_inference_servicer
from cluster.gateway.service.gateway import GatewayService
from cluster.gateway.tls import grpc_credentials

_log = logging.getLogger(__name__)

INFERENCE_SERVICE: str = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

HealthProbe = Callable[[], Awaitable[Mapping[str, bool]]]


class GrpcServer:
    """A built gRPC server: `start()`, `stop()`, and the health of the models it serves."""

    def __init__(
        self,
        server: grpc.aio.Server,
        health: health_aio.HealthServicer,
        *,
        address: str,
        port: int,
        model_ids: list[str],
        health_probe: HealthProbe | None,
        health_interval_s: float,
        auth_enabled: bool,
    ) -> None:
        self.server = server
        self.health = health
        self.address = address
        self.port = port
        self._model_ids = model_ids
        self._probe = health_probe
        self._interval = health_interval_s
        self._auth_enabled = auth_enabled
        self._poller: asyncio.Task[None] | None = None

    @property
    def target(self) -> str:
        """What a client dials: host:port with the port actually bound."""
        host = self.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        await self.health.set(INFERENCE_SERVICE, SERVING)
        await self.refresh_health()
        if self._probe is not None:
            self._poller = asyncio.create_task(self._poll(), name="grpc-health-poll")
        auth = "on" if self._auth_enabled else "OFF (local mode: no API keys configured)"
        _log.info("gRPC API listening on %s (authentication %s)", self.target, auth)

    async def refresh_health(self) -> None:
        """Each model SERVING or NOT_SERVING by the probe (SERVING when there is none)."""
        healthy: Mapping[str, bool] = {}
        if self._probe is not None:
            try:
                healthy = await self._probe()
            except Exception:
                _log.exception("health probe failed; marking every model NOT_SERVING")
                healthy = {model_id: False for model_id in self._model_ids}
        for model_id in self._model_ids:
            ok = healthy.get(model_id, self._probe is None)
            await self.health.set(model_id, SERVING if ok else NOT_SERVING)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh_health()

    async def stop(self, grace: float | None = 5.0) -> None:
        """NOT_SERVING everywhere, then let calls in flight finish for `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        await self.server.stop(grace)


def build_grpc_server(
    service: GatewayService,
    authenticator: Authenticator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    health_probe: HealthProbe | None = None,
    health_interval_s: float = 10.0,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    tls: TlsSettings | None = None,
) -> GrpcServer:
    """A server bound to host:port (0 = an ephemeral port; see `GrpcServer.port`), not yet
    started. Call inside the event loop that will run it."""
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ]
    )
    add_inference_servicer(InferenceServicer(service, authenticator), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            INFERENCE_SERVICE,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, grpc_credentials(tls))
    if bound == 0:
        raise OSError(f"gRPC server could not bind {address}")
    return GrpcServer(
        server,
        health,
        address=address,
        port=bound,
        model_ids=[model.id for model in service.resolver.models],
        health_probe=health_probe,
        health_interval_s=health_interval_s,
        auth_enabled=authenticator.enabled,
    )
