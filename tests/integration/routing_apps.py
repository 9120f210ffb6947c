"""Small modelyard apps deployed beside the shared live cluster's, for routing and failover.

`deployed_app(name, config)` runs `build_app(config)` under route prefix `/<name>` on the
live cluster's Ray + Serve, waits until it is RUNNING, yields, and deletes it. The live
cluster has 8 logical CPUs and its own app takes 5 (four models + gateway), so an app
here may take 3: one gateway and two model replicas (`reserve_gpus: false`).

Such an app is reached through Ray Serve's proxy (`apps_url`), which routes every
application by its prefix. With `gateway.ingress: direct` the shared app's gateway replica
listens on the shared `base_url` itself and serves only its own app; the modules here
override `base_url` with `apps_url`.

`wait_for(predicate, timeout_s)` polls with a deadline; `router_snapshot(base, app)` reads
the app's gateway router state from `GET /<app>/debug/routing` (the config turns it on).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import requests

from cluster.config import parse_config
from cluster.config.settings import ClusterConfig
from deployments.launcher import LocalCluster
from tests.integration.live import HTTP_TIMEOUT_S

DEPLOY_TIMEOUT_S = 90.0
T = TypeVar("T")


def apps_url(cluster: LocalCluster) -> str:
    """Base URL that reaches an app deployed here by its route prefix: Serve's proxy."""
    return cluster.proxy_url


def app_config(models: list[dict[str, Any]], **routing: Any) -> ClusterConfig:
    return parse_config(
        {"routing": {"debug_endpoint": True, **routing}, "models": models},
        source="integration",
    )


def wait_for(probe: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(0.1)


@contextmanager
def deployed_app(name: str, config: ClusterConfig) -> Iterator[None]:
    from ray import serve

    from deployments.app import build_app

    serve.run_many(
        [serve.RunTarget(target=build_app(config), name=name, route_prefix=f"/{name}")],
        wait_for_ingress_deployment_creation=False,
        wait_for_applications_running=False,
    )
    try:

        def running() -> bool:
            app = serve.status().applications.get(name)
            return app is not None and str(app.status.value) == "RUNNING"

        wait_for(running, DEPLOY_TIMEOUT_S, f"app {name!r} RUNNING")
        yield
    finally:
        serve.delete(name)


def router_snapshot(base_url: str, app: str, *, index: bool = False) -> dict[str, Any]:
    reply = requests.get(
        f"{base_url}/{app}/debug/routing",
        params={"index": "1"} if index else None,
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def subscribed(snapshot: dict[str, Any] | None, replicas: int) -> bool:
    """The router knows `replicas` replicas and subscribes to each one's KV events."""
    if not snapshot:
        return False
    known = snapshot["replicas"]
    return len(known) == replicas and all(r["kv_events"] for r in known.values())
