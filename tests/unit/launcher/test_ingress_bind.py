"""A direct-ingress port with connections in TIME_WAIT: Serve's own bind fails, the patched
one binds (deployments/ingress_bind.py). Real sockets on loopback, Serve's real server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ray.serve._private import http_util, replica
from ray.serve.config import HTTPOptions

from deployments.ingress_bind import reuse_address_on_direct_ingress
from tests.integration.live import free_port


async def _ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _leave_time_wait(port: int) -> None:
    """A server on `port` that closes an accepted connection first (so that side waits in
    TIME_WAIT), then stops listening: what a killed gateway leaves behind."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first
    assert client.recv(1) == b""
    client.close()
    listener.close()


@pytest.fixture
def restored() -> Iterator[None]:
    saved = (replica.start_asgi_http_server, http_util.set_socket_reuse_port)
    yield
    replica.start_asgi_http_server, http_util.set_socket_reuse_port = saved


async def _start(port: int) -> tuple[asyncio.Task[None], Any]:
    options = HTTPOptions(host="127.0.0.1", port=port)
    return await replica.start_asgi_http_server(  # type: ignore[no-any-return]
        _ok_app, options, event_loop=asyncio.get_running_loop(), enable_so_reuseport=False
    )


async def test_serves_own_bind_fails_on_time_wait_and_the_patched_one_binds(
    restored: None,
) -> None:
    port = free_port()
    _leave_time_wait(port)
    with pytest.raises(RuntimeError, match="Failed to bind"):
        await _start(port)  # Ray Serve 2.60 as shipped: the port is lost

    assert reuse_address_on_direct_ingress()
    assert reuse_address_on_direct_ingress()  # idempotent
    task, server = await _start(port)
    try:
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert reply.status_code == 200
        (listening,) = [s for srv in server.servers for s in srv.sockets]
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        # only SO_REUSEADDR: a second live process must not be able to share the port
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
