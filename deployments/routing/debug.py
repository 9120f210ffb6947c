"""`GET /debug/routing`: what this gateway replica's request routers know (for operators).

Off unless `routing.debug_endpoint` is set, and answered to loopback clients only
(403 otherwise): it lists replica ids, loads and recent routing decisions. The body maps
each model id to its router's snapshot (`RoutingRequestRouter.snapshot`), or null when
that router has not been built in this replica yet; `?index=1` adds every exactly held
block hash per replica.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
ROUTE = "/debug/routing"


class RoutingSource(Protocol):
    async def routing(self, *, include_index: bool = False) -> dict[str, Any]: ...


def add_routing_debug_route(app: FastAPI, source: RoutingSource) -> None:
    async def routing(request: Request) -> JSONResponse:
        client = request.client.host if request.client is not None else ""
        if client not in LOOPBACK:
            return JSONResponse({"error": "loopback clients only"}, status_code=403)
        include = request.query_params.get("index") in ("1", "true")
        return JSONResponse(await source.routing(include_index=include))

    app.add_api_route(ROUTE, routing, methods=["GET"], include_in_schema=False)
