"""The HTTP app of the placement front (`bench.front`), served by `modelyard sim front`.

    POST /v1/completions, /v1/chat/completions (and /api/v1/...)  placed, then proxied
    GET  /health        200 when at least one replica answers its /metrics, else 503
    GET  /v1/models     the first replica's answer
    GET  /front/stats   requests routed per replica, decision latency, KV batches received

Upstream connection failures become a 503 with an OpenAI-style error object; every other
answer (errors included) is the replica's own, relayed unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from bench.front import RoutingFront
from cluster.gateway.http.app import COMPLETION_PATHS

MAX_BODY_BYTES = 16 * 1024 * 1024


def _error(status: int, message: str, kind: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status)


def build_front_app(front: RoutingFront) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await front.start()
        try:
            yield
        finally:
            await front.stop()

    app = FastAPI(title="modelyard placement front", lifespan=lifespan, openapi_url=None)

    async def proxy(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "request body too large", "invalid_request_error")
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        auth = request.headers.get("authorization")
        if auth is not None:
            headers["authorization"] = auth
        try:
            status, out_headers, stream = await front.forward(request.url.path, body, headers)
        except httpx.HTTPError as err:
            return _error(503, f"replica unreachable: {type(err).__name__}", "server_error")
        media = out_headers.pop("content-type", None)
        return StreamingResponse(stream, status_code=status, headers=out_headers, media_type=media)

    for path in COMPLETION_PATHS:
        app.add_api_route(path, proxy, methods=["POST"])

    async def health() -> Response:
        healthy = [rid for rid, load in front.loads.items() if load.healthy]
        return JSONResponse({"healthy": healthy}, status_code=200 if healthy else 503)

    async def models() -> Response:
        url = front.replicas[0].url + "/v1/models"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                response = await client.get(url)
        except httpx.HTTPError as err:
            return _error(503, f"replica unreachable: {type(err).__name__}", "server_error")
        return Response(response.content, response.status_code, media_type="application/json")

    async def stats() -> Response:
        return JSONResponse(front.summary())

    app.add_api_route("/health", health, methods=["GET"])
    app.add_api_route("/v1/models", models, methods=["GET"])
    app.add_api_route("/front/stats", stats, methods=["GET"])
    return app
