"""A real gateway on loopback for the hostile-client tests: uvicorn + `build_gateway_app`
over the in-process `EngineBackend` with one real simulator engine on a real (sped-up)
clock, so a long generation really takes time while a client misbehaves.

The app is wrapped in `SentBytes`, which counts the response body bytes whose `send` has
returned: what the gateway handed to the server and the server took (its transport
buffer, then the kernel's socket buffers). The listening socket is made with a small
`SO_SNDBUF` (accepted sockets inherit it), so that sum has a known ceiling when a client
stops reading. The server runs on its own event loop in a thread; `engine_stats()` reads
the engine's stats on that loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster.config import ClusterConfig, GatewaySettings, ModelDeployment, load_builtin_catalog
from cluster.engine import EngineStats
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine

MODEL = "qwen/qwen3-coder-flash"
#: The server side's send buffer (Linux doubles what is asked for).
SERVER_SNDBUF = 16 * 1024


class SentBytes:
    """ASGI wrapper: `total` = response body bytes whose `send` returned, over all requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.total = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counting(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body":
                self.total += len(message.get("body", b""))

        await self.app(scope, receive, counting)


@dataclass
class Gateway:
    host: str
    port: int
    loop: asyncio.AbstractEventLoop
    engine: SimEngine
    sent: SentBytes
    server: Any = field(repr=False)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def engine_stats(self) -> EngineStats:
        async def read() -> EngineStats:
            return self.engine.stats()

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(timeout=5)

    def wait_idle(self, timeout_s: float) -> float:
        """Seconds until the engine has nothing running or waiting (TimeoutError past it)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            stats = self.engine_stats()
            if stats.running == 0 and stats.waiting == 0:
                return time.monotonic() - started
            time.sleep(0.05)
        raise TimeoutError(f"engine still busy after {timeout_s}s: {self.engine_stats()}")


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SERVER_SNDBUF)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextmanager
def running_gateway(gateway: GatewaySettings, *, speedup: float = 1.0) -> Iterator[Gateway]:
    """The gateway app with `gateway`'s limits over one simulated `MODEL` at `speedup`."""
    config = ClusterConfig(
        gateway=gateway, models=[ModelDeployment(id=MODEL, sim={"speedup": speedup})]
    )
    served = config.served_models(load_builtin_catalog())
    sock = _listening_socket()
    ready: list[Gateway] = []
    failed: list[BaseException] = []

    async def main() -> None:
        engine = SimEngine(served[0], replica_id="clients-0")
        backend = EngineBackend({MODEL: engine})
        await backend.start()
        sent = SentBytes(build_gateway_app(config, served, backend))
        server = uvicorn.Server(
            uvicorn.Config(
                sent,
                log_level="warning",
                lifespan="on",
                timeout_keep_alive=gateway.keep_alive_timeout_s,
            )
        )
        host, port = sock.getsockname()
        ready.append(Gateway(host, port, asyncio.get_running_loop(), engine, sent, server))
        try:
            await server.serve(sockets=[sock])
        finally:
            await backend.shutdown()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name="clients-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not ready or not ready[0].server.started:
        if failed or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start: {failed}")
        time.sleep(0.02)
    try:
        yield ready[0]
    finally:
        ready[0].server.should_exit = True
        thread.join(timeout=15)
        sock.close()
