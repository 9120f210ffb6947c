"""Placement as the Serve request router of a model deployment, in the real app.

A small app beside the shared one: one gateway and two replicas of a simulated model,
with `GET /debug/routing` on. Two routers watch the same replicas: the gateway replica's
(seen through the debug endpoint) and this test process's own, behind a
`DeploymentHandle` (Serve builds the deployment's router in every process that holds a
handle). Both subscribe to the replicas' KV events before any traffic.

- Requests sharing a long prefix land on one replica and read it from its cache; the
  router's exact match (from KV events) equals the engine's cached tokens.
- Requests with distinct prefixes spread over both replicas.
- The two routers end with the same exact index.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from cluster.api.messages import UserMessage
from cluster.config import load_builtin_catalog
from cluster.engine import EngineChunk, EngineRequest
from deployments.launcher import LocalCluster
from deployments.routing.introspect import snapshot_blocking
from tests.integration.live import HTTP_TIMEOUT_S, QWEN
from tests.integration.routing_apps import (
    app_config,
    apps_url,
    deployed_app,
    router_snapshot,
    subscribed,
    wait_for,
)

pytestmark = pytest.mark.integration

APP = "routing"
CONFIG = app_config([{"id": QWEN, "replicas": 2, "reserve_gpus": False, "sim": {"speedup": 200.0}}])
#: ZMQ subscriptions take effect a moment after `connect` (nothing is replayed).
SUBSCRIBE_SETTLE_S = 1.0


@pytest.fixture(scope="module")
def base_url(live_cluster: LocalCluster) -> str:
    """This module's app is reached through Serve's proxy (`routing_apps.apps_url`)."""
    return apps_url(live_cluster)


@pytest.fixture(scope="module")
def routing_app(base_url: str) -> Iterator[Any]:
    """The app, and a streaming handle to its model deployment from this process."""
    from ray import serve

    model = CONFIG.served_models(load_builtin_catalog())[0]
    with deployed_app(APP, CONFIG):
        handle = serve.get_deployment_handle(model.deployment_name, app_name=APP)
        handle.health.remote().result(timeout_s=HTTP_TIMEOUT_S)  # builds this process's router
        wait_for(lambda: subscribed(snapshot_blocking(handle), 2), 30.0, "test router subscribed")
        wait_for(
            lambda: subscribed(router_snapshot(base_url, APP).get(QWEN), 2),
            30.0,
            "gateway router subscribed",
        )
        time.sleep(SUBSCRIBE_SETTLE_S)
        yield handle.options(stream=True)


def _chat(base_url: str, prompt: str) -> dict[str, Any]:
    reply = requests.post(
        f"{base_url}/{APP}/api/v1/chat/completions",
        json={"model": QWEN, "messages": [{"role": "user", "content": prompt}], "max_tokens": 4},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _decision(base_url: str, response_id: str) -> dict[str, Any]:
    decisions = router_snapshot(base_url, APP)[QWEN]["decisions"]
    found = [d for d in decisions if d["request_id"] == f"{response_id}-0"]
    assert len(found) == 1, decisions
    return found[0]


def _prefix(tag: str) -> str:
    return f"{tag} {uuid.uuid4().hex}. " + " ".join(
        f"Clause {i}: the router keeps a prefix where its cache is." for i in range(50)
    )


def test_shared_prefix_lands_on_one_replica_and_hits_its_cache(
    routing_app: Any, base_url: str
) -> None:
    prefix = _prefix("Shared")
    first = _chat(base_url, prefix + " Question zero?")
    replica = _decision(base_url, first["id"])["replica_id"]
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    # The replica's KV events reach the gateway's router as exact entries.
    wait_for(
        lambda: router_snapshot(base_url, APP)[QWEN]["replicas"][replica]["exact_blocks"] > 0,
        10.0,
        "exact entries from the replica's KV events",
    )
    for i in range(1, 4):
        reply = _chat(base_url, prefix + f" Question {i}?")
        decision = _decision(base_url, reply["id"])
        cached = reply["usage"]["prompt_tokens_details"]["cached_tokens"]
        assert decision["replica_id"] == replica
        assert cached > 0
        # The router predicted the engine's hit, read at decision time
        # (tests/unit/routing/test_exact_prediction.py holds the case that once read 672).
        assert decision["exact_tokens"] == cached


def test_first_chunk_names_the_same_replica_for_a_shared_prefix(routing_app: Any) -> None:
    prefix = _prefix("Handle")
    replicas: list[str] = []
    cached: list[int] = []
    for i in range(3):
        request = EngineRequest(
            request_id=f"handle-{uuid.uuid4().hex}",
            model=QWEN,
            messages=[UserMessage(role="user", content=prefix + f" Turn {i}.")],
            max_tokens=4,
        )
        chunks: list[EngineChunk] = list(routing_app.generate.remote(request))
        assert chunks[0].replica_id is not None
        assert chunks[-1].usage is not None
        replicas.append(chunks[0].replica_id)
        cached.append(chunks[-1].usage.cached_tokens)
    assert len(set(replicas)) == 1
    assert cached[0] == 0
    assert all(c > 0 for c in cached[1:])


def test_distinct_prefixes_spread_over_replicas(routing_app: Any, base_url: str) -> None:
    # Sent together: the router's own in-flight accounting (exact) spreads them. One by one,
    # each would meet two idle replicas and go where the replicas' last reported numbers,
    # which may be a stats period old on a loaded host, say is less busy.
    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(
            pool.map(lambda _: _chat(base_url, _prefix("Distinct") + " Hello?"), range(12))
        )
    decisions = [_decision(base_url, reply["id"]) for reply in replies]
    placed = [d["replica_id"] for d in decisions]
    assert len(set(placed)) == 2, (decisions, router_snapshot(base_url, APP)[QWEN]["replicas"])


def test_gateway_and_test_process_routers_hold_the_same_exact_index(
    routing_app: Any, base_url: str
) -> None:
    def same() -> dict[str, list[int]] | None:
        gateway = router_snapshot(base_url, APP, index=True)[QWEN]["exact_index"]
        mine = snapshot_blocking(routing_app, include_index=True)
        assert mine is not None
        ours = mine["exact_index"]
        agree = gateway == ours and sum(len(h) for h in ours.values()) > 0
        return ours if agree else None

    index = wait_for(same, 10.0, "both routers' exact indexes agree")
    assert len(index) == 2  # both replicas hold blocks after the spread test
    assert all(index.values())
