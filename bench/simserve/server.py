"""Run one engine behind its HTTP app with uvicorn, and publish its KV events.

    await serve(app, engine, host=..., port=..., publisher=..., on_ready=...)

Order: start the engine, subscribe to its KV events (before any request, so no batch is
missed), start publishing them, then serve HTTP until uvicorn is told to stop (SIGINT or
SIGTERM, which uvicorn captures, or `server.should_exit`). On the way out, whatever
happened: stop serving, shut the engine down (open streams end with `EngineUnavailable`),
stop the publisher. `on_ready(url)` is called once uvicorn listens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from cluster.config.gateway_security import TlsSettings
from cluster.engine import Engine
from cluster.gateway.tls import uvicorn_tls
from cluster.kv_events.publisher import KVEventPublisher

READY_POLL_S = 0.05
#: Idle keep-alive seconds. Longer than a client's pool keeps idle connections, so a proxy
#: never reuses a connection the server is closing at that moment (uvicorn's default of 5 s
#: races with routers' pools and shows up as read errors under load).
KEEP_ALIVE_S = 300


def server_config(
    app: FastAPI, *, host: str, port: int, log_level: str, tls: TlsSettings | None = None
) -> uvicorn.Config:
    """uvicorn as every sim process runs it (a replica, the placement front): no access
    log, app lifespan on, 5 s graceful shutdown, the long keep-alive above; HTTPS with
    `tls` (`gateway.tls`)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
        **uvicorn_tls(tls),
    )


async def _announce(server: uvicorn.Server, url: str, on_ready: Callable[[str], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        await asyncio.sleep(READY_POLL_S)
    on_ready(url)


async def serve(
    app: FastAPI,
    engine: Engine,
    *,
    host: str,
    port: int,
    publisher: KVEventPublisher | None = None,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
    tls: TlsSettings | None = None,
) -> None:
    await engine.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        if publisher is not None:
            tasks.append(asyncio.create_task(publisher.pump(engine.kv_events())))
        config = server_config(app, host=host, port=port, log_level=log_level, tls=tls)
        server = uvicorn.Server(config)
        if on_ready is not None:
            url = f"{'https' if tls else 'http'}://{host}:{port}"
            tasks.append(asyncio.create_task(_announce(server, url, on_ready)))
        await server.serve()
    finally:
        await engine.shutdown()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if publisher is not None:
            publisher.close()
