"""A model replica dying mid-run, through the real Serve app.

Two replicas of one simulated model, each running one sequence at a time
(`max_num_seqs: 1`) at a tenth of real time. Two requests share a long prefix, so the
router puts both on the same replica A: the first streams, the second waits in A's
engine queue (no chunk yet). Then A's actor is killed (`ray.kill`):

- the started stream ends with an SSE `error` event (engine_unavailable) and `[DONE]`,
  within a bounded time, never a hang;
- the waiting request is retried by the gateway on replica B and succeeds;
- the service keeps serving new requests.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import requests

from deployments.launcher import LocalCluster
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

APP = "failover"
ERROR_WITHIN_S = 15.0


@pytest.fixture(scope="module")
def base_url(live_cluster: LocalCluster) -> str:
    """This module's app is reached through Serve's proxy (`routing_apps.apps_url`)."""
    return apps_url(live_cluster)


@pytest.fixture(scope="module")
def failover_app(base_url: str) -> Iterator[str]:
    config = app_config(
        [
            {
                "id": QWEN,
                "replicas": 2,
                "reserve_gpus": False,
                "sim": {"speedup": 0.1, "max_num_seqs": 1},
            }
        ]
    )
    with deployed_app(APP, config):
        wait_for(
            lambda: subscribed(router_snapshot(base_url, APP).get(QWEN), 2),
            30.0,
            "gateway router subscribed to both replicas",
        )
        yield f"{base_url}/{APP}"


def _body(prompt: str, max_tokens: int) -> dict[str, Any]:
    return {
        "model": QWEN,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def _events(response: requests.Response) -> Iterator[str]:
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            yield line[len(b"data: ") :].decode()


def _collect(url: str, body: dict[str, Any]) -> list[str]:
    with requests.post(url, json=body, stream=True, timeout=HTTP_TIMEOUT_S) as reply:
        assert reply.status_code == 200, reply.text
        return list(_events(reply))


def _decisions(base_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = router_snapshot(base_url, APP)[QWEN]["decisions"]
    return found


def test_replica_death_fails_started_stream_and_retries_waiting_request(
    failover_app: str, base_url: str
) -> None:
    import ray

    url = f"{failover_app}/api/v1/chat/completions"
    prefix = f"Failover {uuid.uuid4().hex}. " + " ".join(
        f"Step {i}: the replica keeps its cache." for i in range(60)
    )
    before = len(_decisions(base_url))
    with ThreadPoolExecutor(max_workers=2) as pool:
        stream = requests.post(
            url, json=_body(prefix + " Tell a long story.", 2000), stream=True, timeout=60
        )
        assert stream.status_code == 200, stream.text
        events = _events(stream)
        first = json.loads(next(events))
        assert first["object"] == "chat.completion.chunk"  # started: a chunk was sent
        waiting: Future[list[str]] = pool.submit(_collect, url, _body(prefix + " Short?", 4))

        placed = wait_for(
            lambda: (d := _decisions(base_url)[before:]) and len(d) >= 2 and d,
            10.0,
            "both requests routed",
        )
        replica = placed[0]["replica_id"]
        assert placed[1]["replica_id"] == replica  # same prefix, same replica (and queued)
        assert not waiting.done()

        killed = time.monotonic()
        ray.kill(ray.get_actor(replica, namespace="serve"), no_restart=True)

        rest = list(events)  # must end: an error event, then [DONE]
        ended = time.monotonic() - killed
        stream.close()
        assert ended < ERROR_WITHIN_S
        assert rest[-1] == "[DONE]"
        error = json.loads(rest[-2])["error"]
        assert error["code"] == "engine_unavailable"

        retried = waiting.result(timeout=30)
    assert retried[-1] == "[DONE]"
    assert not any('"error"' in e for e in retried)
    usage = json.loads(retried[-2])["usage"]
    assert usage["completion_tokens"] > 0
    later = _decisions(base_url)[before:]
    assert any(d["replica_id"] != replica for d in later[2:])  # the retry went elsewhere

    # The service keeps serving (the survivor, and Serve's replacement replica).
    again = _collect(url, _body(f"After {uuid.uuid4().hex}: hello?", 4))
    assert again[-1] == "[DONE]"
    assert not any('"error"' in e for e in again)
