"""A client that hangs up mid-stream frees its engine slot on the replica.

Client closes the socket -> the gateway replica's own HTTP server (`gateway.ingress:
direct`; Serve's proxy with `proxy`) -> gateway stream closed -> `HandleBackend` cancels
the handle call -> `ModelReplica.generate` is cancelled -> `engine.abort`. A second small
app with a deliberately slow simulator (0.01x real time: the answer would take well over
ten seconds) is deployed beside the shared one, under its own route prefix (and, with
direct ingress, on its own port: `LocalCluster.app_base`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cluster.config import load_builtin_catalog, parse_config
from cluster.config.settings import ClusterConfig
from deployments.launcher import LocalCluster
from tests.integration.live import HTTP_TIMEOUT_S, MISTRAL, wait_app_running

pytestmark = pytest.mark.integration

APP = "slow"
SLOW_SPEEDUP = 0.01
DEPLOY_TIMEOUT_S = 120.0
ABORT_TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def slow_app(live_cluster: LocalCluster) -> Iterator[tuple[str, Any]]:
    from ray import serve

    from deployments.app import build_app

    config: ClusterConfig = parse_config(
        {
            "ray": {"virtual_gpus": 32},
            "models": [{"id": MISTRAL, "sim": {"speedup": SLOW_SPEEDUP}}],
        }
    )
    model = config.served_models(load_builtin_catalog())[0]
    serve.run_many(
        [serve.RunTarget(target=build_app(config), name=APP, route_prefix=f"/{APP}")],
        wait_for_ingress_deployment_creation=False,
        wait_for_applications_running=False,
    )
    try:
        wait_app_running(APP, DEPLOY_TIMEOUT_S)
        handle = serve.get_deployment_handle(model.deployment_name, app_name=APP)
        base = live_cluster.app_base(APP, f"/{APP}")
        yield f"{base}/{APP}/api/v1", handle
    finally:
        serve.delete(APP)


def _running(handle: Any) -> int:
    stats = handle.stats.remote().result(timeout_s=10)
    return int(stats.running + stats.waiting)


def test_client_disconnect_aborts_the_engine_request(slow_app: tuple[str, Any]) -> None:
    api, handle = slow_app
    assert _running(handle) == 0
    started = time.monotonic()
    with requests.post(
        f"{api}/chat/completions",
        json={
            "model": MISTRAL,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": 150,
            "stream": True,
        },
        stream=True,
        timeout=HTTP_TIMEOUT_S,
    ) as reply:
        assert reply.status_code == 200
        lines = reply.iter_lines()
        first = next(line for line in lines if line.startswith(b"data: "))
        assert b"chat.completion.chunk" in first
        assert _running(handle) == 1  # still generating on the replica
    closed = time.monotonic()
    while _running(handle) and time.monotonic() - closed < ABORT_TIMEOUT_S:
        time.sleep(0.1)
    assert _running(handle) == 0
    # Freed long before the answer could have finished on its own (>= 24 tokens at 0.01x).
    assert time.monotonic() - started < 10.0
