"""Run the gRPC front door beside the HTTP app, over the same core, for the app's lifetime.

`attach_grpc_server(app, settings)` wraps the FastAPI app's lifespan: at startup it builds a
gRPC server from what the app holds in `app.state` — the very `GatewayService`, the
`Authenticator` and the health probe the HTTP routes use (`cluster.gateway.http.create_app`) — binds
`settings.host:settings.grpc_port` and starts it; at shutdown it stops it (health turns
NOT_SERVING, calls in flight get `STOP_GRACE_S`). Both run on the loop that serves the app,
which is where grpc.aio must live. In a Ray Serve gateway replica the lifespan runs on the
replica's event loop; several replicas on one node share the port through SO_REUSEPORT.
With `grpc_port` unset nothing is attached.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from cluster.config.settings import GatewaySettings
from cluster.gateway.grpc.server import GrpcServer, build_grpc_server

STOP_GRACE_S = 5.0


def attach_grpc_server(app: FastAPI, settings: GatewaySettings) -> None:
    if settings.grpc_port is None:
        return
    port = settings.grpc_port
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        state = running.state
        server: GrpcServer = build_grpc_server(
            state.service,
            state.authenticator,
            settings.host,
            port,
            health_probe=state.health,
            max_message_bytes=settings.max_body_bytes,
            tls=settings.tls,
        )
        await server.start()
        state.grpc_server = server
        try:
            async with inner(running) as inner_state:
                yield inner_state
        finally:
            await server.stop(STOP_GRACE_S)

    app.router.lifespan_context = lifespan
