"""The admin listener: operator routes on their own port, off the public one.

Admin routes (operators and monitoring, not API clients):

- `GET /metrics` (Prometheus: the gateway's series, every replica's load, the engines');
- `GET /v1/usage`, `GET /api/v1/usage` (ledger totals; a managed key still sees only its
  own, so a key is still required where keys are configured);
- `GET /debug/routing` (with `routing.debug_endpoint`; loopback clients only).

Public on every listener: the API (`/v1/...`, `/api/v1/...` completions and models), the
caller's own ledger routes (`/api/v1/key`, `/api/v1/generation`), `GET /health` (load
balancers' probes) and `GET /openapi.json` (what clients code against). Key management has
no HTTP route: it is the `modelyard keys` command, which talks to the database.

With `gateway.admin_port` set, `build_gateway_app` registers the admin routes on a second
app (`new_admin_app`) instead of the public one, so the public port answers them 404;
`attach_admin_server` runs that app on `gateway.admin_host:admin_port` (loopback by
default; TLS as `gateway.tls`) for the public app's lifetime, on its event loop: in
`modelyard sim serve`, in the test harnesses, and in each Ray Serve gateway replica (several
replicas on one node share the port through `SO_REUSEPORT`; a scrape reaches one of them).
Unset (the default): the admin routes stay on the public port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from starlette.exceptions import HTTPException

from cluster.config.settings import GatewaySettings
from cluster.errors import ModelyardError
from cluster.gateway.http.errors import ErrorBoundary, on_http_exception, on_modelyard_error
from cluster.gateway.tls import uvicorn_tls

_log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0


def new_admin_app() -> FastAPI:
    """An empty app with the gateway's error translation, for the admin routes."""
    app = FastAPI(title="modelyard admin", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ErrorBoundary)
    app.add_exception_handler(ModelyardError, on_modelyard_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    return app


def admin_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, shareable by the replicas of one node."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"admin listener could not bind {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    return sock


@contextlib.contextmanager
def _no_signals() -> Iterator[None]:
    """The public server owns the process's signals; this one is stopped by its lifespan."""
    yield


def attach_admin_server(app: FastAPI, settings: GatewaySettings) -> None:
    """Serve `app.state.admin_app` on the admin port during `app`'s lifespan (see module
    docstring); nothing when `settings.admin_port` is unset."""
    admin: FastAPI | None = getattr(app.state, "admin_app", None)
    if settings.admin_port is None or admin is None:
        return
    host, port = settings.admin_host, settings.admin_port
    options = uvicorn_tls(settings.tls)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Any) -> AsyncIterator[Any]:
        sock = admin_socket(host, port)
        server = uvicorn.Server(
            uvicorn.Config(
                admin,
                lifespan="off",
                access_log=False,
                log_config=None,  # leave the process's logging (and uvicorn's) as it is
                log_level=None,
                timeout_keep_alive=settings.keep_alive_timeout_s,
                **options,
            )
        )
        server.capture_signals = _no_signals  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve(sockets=[sock]), name="admin-listener")
        scheme = "https" if options else "http"
        _log.info("admin routes listening on %s://%s:%d", scheme, host, port)
        try:
            async with inner(running) as inner_state:
                yield inner_state
        finally:
            server.should_exit = True
            try:
                await asyncio.wait_for(task, STOP_GRACE_S)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            sock.close()

    app.router.lifespan_context = lifespan
