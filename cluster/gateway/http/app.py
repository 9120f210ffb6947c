"""The OpenAI-compatible HTTP app.

    build_gateway_app(config, served, backend) -> FastAPI

is the one call that builds the gateway's object graph — metrics (own registry), tracer
provider (from `config.telemetry`, never global), `GatewayService`, routes — for a list of
served models and a `ModelBackend`. The Ray Serve gateway deployment calls exactly this in
each replica; `modelyard sim serve` and the tests call it with an `EngineBackend`. The
signature is stable. `create_app` is the lower-level half, for callers that build the
service themselves (tests that capture spans).

Routes, under both /v1 and /api/v1: POST /chat/completions, POST /completions,
GET /models, GET /models/{id} (ids contain '/'); and GET /openapi.json (the API's OpenAPI
document, `cluster.http.openapi`), GET /health (200, or 503 when any model is unhealthy,
with per-model status), GET /metrics (Prometheus text: the gateway's metrics, with every
model replica's load when the backend offers `fleet()` (`cluster.gateway.telemetry.fleet`),
then the engines' own, e.g. vLLM's `vllm:*`, when it offers `engine_metrics()`).

API routes need `Authorization: Bearer <key>` when `config.auth` has keys (401 with an
OpenAI error object otherwise; /health and /metrics stay open); `app.state` holds the
service, authenticator and health probe the gRPC front door shares
(`cluster.gateway.grpc.lifespan`). With `gateway.admin_port` the admin routes (/metrics,
/usage) move to their own listener (`cluster.gateway.http.admin`). CORS is off unless
`gateway.cors_allow_origins` lists origins (Starlette's `CORSMiddleware`).

Clients are bounded by `cluster.gateway.http.limits` (headers → 431, a slow body → 408, a
stream nobody reads is cut off). Request bodies are read raw and bounded
(`gateway.max_body_bytes` → 413) and validated by
`cluster.api.validation` (never FastAPI's 422). Responses carry `x-modelyard-engine`
("sim (simulated)" or "vllm"). Errors: see `cluster.gateway.http.errors`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from typing import TypeVar

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.api.validation import parse_chat_request, parse_completion_request
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.errors import ModelyardError
from cluster.gateway.auth import Authenticator, OpenAccess, Principal, build_authenticator
from cluster.gateway.auth.managed import build_key_authenticator
from cluster.gateway.auth.ratelimit import RateLimiter
from cluster.gateway.http.admin import attach_admin_server, new_admin_app
from cluster.gateway.http.body import read_body
from cluster.gateway.http.errors import ErrorBoundary, on_http_exception, on_modelyard_error
from cluster.gateway.http.ledger_routes import add_ledger_routes
from cluster.gateway.http.limits import ClientLimits, HeaderLimits
from cluster.gateway.http.openapi import openapi_document
from cluster.gateway.http.streaming import EventStreamResponse
from cluster.gateway.service import GatewayService, ModelBackend
from cluster.gateway.service.ledger_meter import LedgerMeter
from cluster.gateway.service.limits import RequestLimits
from cluster.gateway.service.media import MediaPolicy
from cluster.gateway.telemetry import (
    GatewayMetrics,
    RequestObserver,
    build_tracer_provider,
    tracer_from,
)
from cluster.gateway.telemetry.fleet import FleetSource
from cluster.ledger.runtime import Ledger, ledger_enabled, open_ledger

API_PREFIXES = ("/v1", "/api/v1")
#: The generating routes (what routers place and proxy), under every prefix.
COMPLETION_PATHS = tuple(
    f"{prefix}/{name}" for prefix in API_PREFIXES for name in ("completions", "chat/completions")
)
ENGINE_HEADER = "x-modelyard-engine"
HEALTH_TIMEOUT_S = 10.0

R = TypeVar("R", ChatCompletionRequest, CompletionRequest)
HealthProbe = Callable[[], Awaitable[dict[str, bool]]]
EngineMetrics = Callable[[], Awaitable[str]]


def _json(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), 200, headers, media_type="application/json")


async def _streamed(
    stream: AsyncGenerator[BaseModel, None], headers: dict[str, str], send_timeout_s: float
) -> Response:
    """Prime the stream: errors before the first chunk still get their own status."""
    try:
        first: BaseModel | None = await anext(stream)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await stream.aclose()
        raise
    return EventStreamResponse(first, stream, headers, send_timeout_s)


def create_app(
    service: GatewayService,
    *,
    health: HealthProbe,
    metrics: GatewayMetrics,
    max_body_bytes: int,
    tracer_provider: TracerProvider | None = None,
    authenticator: Authenticator | None = None,
    engine_metrics: EngineMetrics | None = None,
    fleet: FleetSource | None = None,
    client_limits: ClientLimits | None = None,
    admin_app: FastAPI | None = None,
    cors_allow_origins: Sequence[str] = (),
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if tracer_provider is not None:
            tracer_provider.shutdown()

    app = FastAPI(
        title="modelyard",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    auth = authenticator or OpenAccess()
    app.state.service = service
    app.state.metrics = metrics
    app.state.authenticator = auth
    app.state.health = health
    app.state.admin_app = admin_app
    ops = admin_app or app  # where the admin routes go (cluster.gateway.http.admin)
    limits = client_limits or ClientLimits()
    app.add_middleware(ErrorBoundary)
    app.add_middleware(HeaderLimits, limits=limits)
    if cors_allow_origins:  # off by default: no Access-Control-* headers, no preflight
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_allow_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],  # SDKs add their own (x-stainless-*); origins are explicit
            expose_headers=[ENGINE_HEADER],
        )
    app.add_exception_handler(ModelyardError, on_modelyard_error)
    app.add_exception_handler(HTTPException, on_http_exception)

    def engine_headers(model: str) -> dict[str, str]:
        label = service.engine_label(model)
        return {} if label is None else {ENGINE_HEADER: label}

    async def generate(
        request: Request,
        parse: Callable[[bytes], R],
        whole: Callable[[R, Principal], Awaitable[BaseModel]],
        streamed: Callable[[R, Principal], AsyncGenerator[BaseModel, None]],
    ) -> Response:
        """Authenticate, read and validate the body, answer whole or as an event stream."""
        caller = await auth.authenticate(request.headers.get("authorization"))
        parsed = parse(await read_body(request, max_bytes, limits.body_timeout_s))
        headers = engine_headers(parsed.model)
        if parsed.stream:
            return await _streamed(streamed(parsed, caller), headers, limits.send_timeout_s)
        return _json(await whole(parsed, caller), headers)

    async def chat_completions(request: Request) -> Response:
        return await generate(request, parse_chat_request, service.chat, service.stream_chat)

    async def completions(request: Request) -> Response:
        return await generate(
            request, parse_completion_request, service.complete, service.stream_complete
        )

    async def list_models(request: Request) -> Response:
        await auth.authenticate(request.headers.get("authorization"))
        return _json(service.list_models())

    async def get_model(request: Request, model_id: str) -> Response:
        await auth.authenticate(request.headers.get("authorization"))
        return _json(service.get_model(model_id))

    max_bytes = max_body_bytes
    for prefix in API_PREFIXES:
        app.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"])
        app.add_api_route(f"{prefix}/completions", completions, methods=["POST"])
        app.add_api_route(f"{prefix}/models", list_models, methods=["GET"])
        app.add_api_route(f"{prefix}/models/{{model_id:path}}", get_model, methods=["GET"])

    async def health_route() -> Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                models = await health()
        except (Exception, TimeoutError):
            models, ok = {}, False
        else:
            ok = bool(models) and all(models.values())
        body = {"status": "ok" if ok else "unavailable", "models": models}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_route() -> Response:
        if fleet is not None:  # every model replica's load (bounded; never fails the scrape)
            await metrics.fleet.refresh(fleet)
        body = metrics.render()
        if engine_metrics is not None:  # the engines' own metrics (vLLM's vllm:*)
            try:
                async with asyncio.timeout(HEALTH_TIMEOUT_S):
                    body += (await engine_metrics()).encode("utf-8")
            except (Exception, TimeoutError):
                pass  # a scrape without engine metrics beats a failed scrape
        return Response(body, media_type=metrics.content_type)

    document = openapi_document([m.id for m in service.list_models().data], API_PREFIXES)

    async def openapi_route() -> Response:
        return JSONResponse(document)

    app.add_api_route("/openapi.json", openapi_route, methods=["GET"])
    app.add_api_route("/health", health_route, methods=["GET"])
    ops.add_api_route("/metrics", metrics_route, methods=["GET"])
    return app


def build_gateway_app(
    config: ClusterConfig,
    served: list[ServedModel],
    backend: ModelBackend,
    *,
    environ: Mapping[str, str] | None = None,
    ledger_owner: str | None = None,
) -> FastAPI:
    """The gateway app for `served` models reached through `backend` (module docstring).

    With a ledger (`cluster.ledger.runtime.ledger_enabled`: keys mode or a ledger URL in
    the environment) every request is metered and recorded, and the ledger routes are
    added (`cluster.gateway.http.ledger_routes`); the ledger closes with the app."""
    env = os.environ if environ is None else environ
    metrics = GatewayMetrics()
    provider = build_tracer_provider(config.telemetry)
    observer = RequestObserver(metrics, tracer_from(provider))
    gateway = config.gateway
    ledger = open_ledger(config, env, owner=ledger_owner) if ledger_enabled(config, env) else None
    authenticator = (
        build_key_authenticator(config.auth, ledger.keys)
        if ledger is not None and ledger.keys is not None
        else build_authenticator(config.auth)
    )
    service = GatewayService(
        served,
        backend,
        observer,
        timeout_s=gateway.request_timeout_s,
        stall_timeout_s=gateway.stall_timeout_s,
        limits=RequestLimits.of(gateway),
        media=MediaPolicy(tuple(gateway.allowed_media_url_prefixes)),
        meter=None if ledger is None else ledger_meter(ledger),
    )
    app = create_app(
        service,
        health=backend.health,
        metrics=metrics,
        max_body_bytes=config.gateway.max_body_bytes,
        tracer_provider=provider,
        authenticator=authenticator,
        engine_metrics=getattr(backend, "engine_metrics", None),
        fleet=getattr(backend, "fleet", None),
        client_limits=ClientLimits.of(gateway),
        admin_app=None if gateway.admin_port is None else new_admin_app(),
        cors_allow_origins=gateway.cors_allow_origins,
    )
    if ledger is not None:
        add_ledger_routes(
            app,
            authenticator,
            ledger.queries,
            ledger.keys,
            API_PREFIXES,
            admin=app.state.admin_app or app,
        )
        close_with_app(app, ledger.close)
        app.state.ledger = ledger
    attach_admin_server(app, gateway)
    return app


def ledger_meter(ledger: Ledger) -> LedgerMeter:
    return LedgerMeter(ledger.writer, owner=ledger.owner, limiter=RateLimiter(time.monotonic))


def close_with_app(app: FastAPI, close: Callable[[], None]) -> None:
    """Run `close` (on a thread) after the app's own shutdown."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[None]:
        try:
            async with inner(running):
                yield
        finally:
            await asyncio.to_thread(close)

    app.router.lifespan_context = lifespan
