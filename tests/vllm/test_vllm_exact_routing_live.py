"""Exact affinity for vLLM through the real app: Ray Serve, the gateway's request router,
one replica of the tiny model on real vLLM (CPU), `GET /debug/routing` on.

The gateway's router loads the model's tokenizer on a background thread (proxy hashes
meanwhile), adopts the block size the replica reports (128 on vLLM CPU; the placement
default is 16) and subscribes to the replica's KV events. Then a repeated long prefix
with tools: the router's exact match for the second request equals the cached tokens
vLLM itself reports for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.processes import free_port
from cluster.config import parse_config
from deployments.launcher import LocalCluster
from tests.contract.engine_contract import WEATHER_TOOL, shared_prefix
from tests.integration.routing_apps import wait_for
from tests.vllm.conftest import MODEL_ID, TinyArtifacts, tiny_served
from tests.vllm.test_vllm_exact_routing import TEMPLATE

pytestmark = [pytest.mark.vllm, pytest.mark.integration]

START_TIMEOUT_S = 240.0
HTTP_TIMEOUT_S = 120.0
CPU_BLOCK_SIZE = 128
#: ZMQ subscriptions take effect a moment after `connect` (nothing is replayed).
SUBSCRIBE_SETTLE_S = 1.0


@pytest.fixture(scope="module")
def cluster(
    tiny_artifacts: TinyArtifacts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    template: Path = tmp_path_factory.mktemp("live-template") / "chat_template.jinja"
    template.write_text(TEMPLATE, "utf-8")
    spec = tiny_served(tiny_artifacts).spec.model_dump(mode="json", exclude={"lora"})
    spec["vllm"] = {**spec["vllm"], "chat_template": str(template)}
    config = parse_config(
        {
            "gateway": {"host": "127.0.0.1", "port": free_port()},
            "ray": {"num_cpus": 4},
            "routing": {"debug_endpoint": True},
            "catalog": [spec],
            "models": [
                {
                    "id": MODEL_ID,
                    "engine": "vllm",
                    "reserve_gpus": False,
                    "vllm": {
                        "model_path": str(tiny_artifacts.model),
                        "enforce_eager": True,
                        "dtype": "float32",
                    },
                }
            ],
        },
        source="test",
    )
    started = LocalCluster(config, object_store_bytes=128 * 1024 * 1024)
    started.start(timeout_s=START_TIMEOUT_S)
    try:
        yield started
    finally:
        started.stop()


def chat(base: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    reply = requests.post(
        f"{base}/v1/chat/completions",
        json={
            "model": MODEL_ID,
            "messages": messages,
            "tools": [WEATHER_TOOL.model_dump(exclude_none=True)],
            "max_tokens": 2,
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def router(base: str) -> dict[str, Any] | None:
    reply = requests.get(f"{base}/debug/routing", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    snapshot: dict[str, Any] | None = reply.json().get(MODEL_ID)
    return snapshot


def exact_and_subscribed(snapshot: dict[str, Any] | None) -> bool:
    if not snapshot or snapshot["block_tokens"] != CPU_BLOCK_SIZE or not snapshot["exact_hashes"]:
        return False
    return bool(snapshot["replicas"]) and all(r["kv_events"] for r in snapshot["replicas"].values())


def exact_blocks(base: str) -> int:
    """Blocks the gateway's router holds exactly (from KV events), over all replicas."""
    snapshot = router(base) or {"replicas": {}}
    return sum(int(r["exact_blocks"]) for r in snapshot["replicas"].values())


def test_the_gateways_router_predicts_vllms_cache_hit(cluster: LocalCluster) -> None:
    base = cluster.base_url
    # Builds the gateway's router. Short and without tools, so vLLM caches no full block
    # before the router has subscribed: events published before a subscription are not
    # replayed, and a block the router never heard of would make its prediction short.
    warm_up = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    reply = requests.post(f"{base}/v1/chat/completions", json=warm_up, timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["prompt_tokens"] < CPU_BLOCK_SIZE
    snapshot = wait_for(lambda: exact_and_subscribed(router(base)) and router(base), 90.0, "ready")
    assert (snapshot["hashing"], snapshot["kv_events"]) == ("vllm", True)
    assert snapshot["tokenizer"] == {"state": "ready", "error": None}
    time.sleep(SUBSCRIBE_SETTLE_S)

    prefix = shared_prefix(250)
    cached_tokens: list[int] = []
    for question in ("A?", "B?"):
        before = exact_blocks(base)
        reply = chat(
            base, [{"role": "system", "content": prefix}, {"role": "user", "content": question}]
        )
        usage = reply["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        decisions = (router(base) or {})["decisions"]
        [decision] = [d for d in decisions if d["request_id"] == f"{reply['id']}-0"]
        assert decision["prompt_tokens"] == usage["prompt_tokens"]  # vLLM's own count
        assert decision["exact_tokens"] == cached  # the router predicted vLLM's own hit
        cached_tokens.append(cached)
        stored = (usage["prompt_tokens"] - cached) // CPU_BLOCK_SIZE  # new full blocks
        target = before + stored
        wait_for(  # this prompt's `stored` events reach the gateway's router
            lambda: exact_blocks(base) >= target,  # noqa: B023 (called within this turn)
            15.0,
            "exact entries from KV events",
        )
    # The tools block and the long system prompt are new on the first request and cached
    # on the second.
    assert cached_tokens[1] >= cached_tokens[0] + 2 * CPU_BLOCK_SIZE
