"""The Serve ingress deployment: the OpenAI HTTP app, built inside each gateway replica.

Ray Serve 2.60's `serve.ingress()` without an app defers the app to replica start: the
class defines `__serve_build_asgi_app__`, which Serve calls after the constructor. That is
where the FastAPI app is built, so it holds this replica's `DeploymentHandle`s (Serve
replaces the bound model deployments passed to `bind` by handles) and nothing of it has to
be pickled. With `gateway.grpc_port` set, the app's lifespan also runs the gRPC API
(`cluster.gateway.grpc.lifespan`) on the replica's event loop, sharing the app's core. With
`routing.debug_endpoint` on, `GET /debug/routing` shows this replica's request routers
(loopback clients only; `deployments.routing.debug`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import ClusterConfig
from deployments.handle_backend import HandleBackend
from deployments.ingress_bind import reuse_address_on_direct_ingress
from deployments.replica_logging import log_like_serve

if TYPE_CHECKING:
    from fastapi import FastAPI
    from ray.serve import Application

GATEWAY_DEPLOYMENT = "gateway"

#: Concurrent HTTP requests one gateway replica admits; each is mostly waiting on a model
#: stream, so this is a memory bound, not a CPU one.
GATEWAY_MAX_ONGOING = 1024


class Gateway:
    """User class of the ingress deployment (wrapped by `serve.ingress()` in `bind_gateway`)."""

    def __init__(self, config: ClusterConfig, handles: dict[str, Any]) -> None:
        # Before Serve starts this replica's direct-ingress server: a replica restarted
        # after a crash must get its port back (deployments/ingress_bind.py).
        reuse_address_on_direct_ingress()
        self._config = config
        self._handles = handles

    def __serve_build_asgi_app__(self) -> FastAPI:
        from cluster.gateway.grpc.lifespan import attach_grpc_server
        from cluster.gateway.http import build_gateway_app

        # This replica's own loggers (cluster.*, deployments.*) at telemetry.log_level,
        # into the replica's log file beside Serve's lines.
        log_like_serve(self._config.telemetry.log_level)
        routing = self._config.routing
        served = self._config.served_models(load_builtin_catalog())
        scales_to_zero = frozenset(
            m.id
            for m in served
            if m.deployment.autoscaling is not None and m.deployment.autoscaling.min_replicas == 0
        )
        backend = HandleBackend(
            self._handles,
            failover_attempts=routing.failover_attempts,
            scales_to_zero=scales_to_zero,
        )
        app = build_gateway_app(self._config, served, backend)
        if routing.debug_endpoint:
            from deployments.routing.debug import add_routing_debug_route

            add_routing_debug_route(app.state.admin_app or app, backend)
        # With gateway.grpc_port set, the gRPC API runs beside the app, over the same core.
        attach_grpc_server(app, self._config.gateway)
        return app


def bind_gateway(config: ClusterConfig, handles: dict[str, Application]) -> Application:
    """The ingress node: one gateway deployment bound to one model deployment per model."""
    from ray import serve

    ingress_cls = serve.ingress()(Gateway)
    deployment = serve.deployment(
        name=GATEWAY_DEPLOYMENT,
        num_replicas=config.gateway.replicas,
        max_ongoing_requests=GATEWAY_MAX_ONGOING,
        ray_actor_options={"num_cpus": 1, "resources": dict(config.gateway.ray_resources)},
        graceful_shutdown_timeout_s=10.0,
    )(ingress_cls)
    return deployment.bind(config, handles)
