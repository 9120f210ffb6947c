"""KV events dropped, duplicated and delayed on a live cluster: the index resynchronises.

A small app beside the shared one (`routing_apps`): one gateway and two replicas of a
simulated model whose replicas damage the KV event batches they publish
(`models[i].kv_event_faults`, `cluster.kv_events.faults`) from `START_S` after each
replica's first batch, for `DURATION_S`: each batch dropped, duplicated or delayed past
later ones, with probability `FAULT_P` each. A workload of `GROUPS` long shared prefixes
(each request a random group's prefix plus its own question) runs sequentially through the HTTP
API in three phases, timed from its first request:

    before   [0, START_S - 1)                                  no faults yet
    during   [START_S + 1.5, START_S + DURATION_S - 0.5)       faults on both replicas
    after    [START_S + DURATION_S + 1, ... + AFTER_S)         faults over

The hit rate of a phase is Σ cached / Σ prompt tokens, the engines' own `usage` figures.
Shown:
- no request fails, in any phase;
- faults were injected on both replicas during the fault phase only, and the gateway's
  router saw them: lost batches (→ snapshots), ignored duplicates;
- after the faults, the hit rate is back within `TOLERANCE` of before, and, from at most
  `RECOVERY_S` into the after phase, every decision's exact prediction (the router's
  index) equals the tokens the engine reported as cached — duplicated and reordered
  batches left no stale or missing block (recovery: the last wrong prediction's time);
- once traffic stops, the gateway router's exact index equals each replica's cache (read
  from the replicas' snapshot sockets), and a router that joins only now (this test
  process's handle) holds the same index: it got the earlier blocks from snapshots.

Prints one `KV-FAULTS {json}` line with the figures (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import zmq.asyncio

from cluster.config import load_builtin_catalog
from cluster.kv_events.snapshot import fetch_snapshot
from cluster.routing import Router, RoutingSettings
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

APP = "kvfaults"
START_S = 12.0
DURATION_S = 14.0
AFTER_S = 10.0
RECOVERY_S = 3.0
FAULT_P = 0.15
GROUPS = 10
TOLERANCE = 0.05
CONFIG = app_config(
    [
        {
            "id": QWEN,
            "replicas": 2,
            "reserve_gpus": False,
            # 160 blocks per replica: the groups' prefixes (~30 blocks each, about five
            # groups per replica) and the questions do not all fit, so prefix blocks are
            # evicted and stored again (removed events matter).
            "sim": {"speedup": 200.0, "kv_blocks": 160},
            "kv_event_faults": {
                "start_s": START_S,
                "duration_s": DURATION_S,
                "drop": FAULT_P,
                "duplicate": FAULT_P,
                "delay": FAULT_P,
                "delay_batches": 3,
                "seed": 7,
            },
        }
    ],
    stats_period_s=0.5,
)


@pytest.fixture(scope="module")
def base_url(live_cluster: LocalCluster) -> str:
    return apps_url(live_cluster)


@pytest.fixture(scope="module")
def faulty_app(base_url: str) -> Iterator[str]:
    with deployed_app(APP, CONFIG):
        wait_for(
            lambda: subscribed(router_snapshot(base_url, APP).get(QWEN), 2),
            30.0,
            "gateway router subscribed to both replicas",
        )
        time.sleep(1.0)  # ZMQ subscriptions take effect a moment after connect
        yield f"{base_url}/{APP}"


@dataclass
class Phase:
    name: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    started: float = 0.0
    ids: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> cached, time

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


PREFIXES = [
    f"Tenant {g} {uuid.uuid4().hex}. "
    + " ".join(f"Rule {i}: tenant {g} keeps its context in the cache." for i in range(40))
    for g in range(GROUPS)
]


class Workload:
    def __init__(self, app_url: str) -> None:
        self.url = f"{app_url}/api/v1/chat/completions"
        self.session = requests.Session()
        self.sent = 0
        self.random = random.Random(15)
        self.decisions: dict[str, dict[str, Any]] = {}

    def one(self, phase: Phase | None) -> None:
        group = self.random.randrange(GROUPS)
        self.sent += 1
        prompt = PREFIXES[group] + f" Question {self.sent}: what now?"
        reply = self.session.post(
            self.url,
            json={
                "model": QWEN,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": 4,
            },
            timeout=HTTP_TIMEOUT_S,
        )
        if phase is None:
            assert reply.status_code == 200, reply.text
            return
        phase.requests += 1
        if reply.status_code != 200:
            phase.errors += 1
            return
        body = reply.json()
        usage = body["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        phase.prompt_tokens += usage["prompt_tokens"]
        phase.cached_tokens += cached
        phase.ids[body["id"]] = (cached, time.monotonic() - phase.started)

    def run_until(self, deadline: float, phase: Phase | None, base_url: str) -> None:
        if phase is not None:
            phase.started = time.monotonic()
        while time.monotonic() < deadline:
            self.one(phase)
            if self.sent % 100 == 0:
                self.read_decisions(base_url)
        self.read_decisions(base_url)

    def read_decisions(self, base_url: str) -> None:
        for d in router_snapshot(base_url, APP)[QWEN]["decisions"]:
            self.decisions[d["request_id"]] = d


def _faults(base_url: str) -> dict[str, dict[str, int]]:
    replicas = router_snapshot(base_url, APP)[QWEN]["replicas"]
    return {name: r["kv_faults"] or {} for name, r in replicas.items()}


def _truth(snapshot_endpoints: dict[str, str]) -> dict[str, list[int]]:
    """Each replica's cache, from its snapshot socket, in the router's hash space."""

    async def read() -> dict[str, list[int]]:
        ctx = zmq.asyncio.Context()
        router = Router(RoutingSettings())
        try:
            for name, endpoint in snapshot_endpoints.items():
                snap = await fetch_snapshot(ctx, endpoint, replica_id=name, timeout_s=5.0)
                router.begin_snapshot(name)
                router.on_kv_snapshot(name, snap.seq, snap.events, now=0.0)
        finally:
            ctx.destroy(linger=0)
        held = router.index.exact_holdings()
        return {name: sorted(held.get(name, ())) for name in snapshot_endpoints}

    return asyncio.run(read())


def test_index_resynchronises_and_placement_recovers(faulty_app: str, base_url: str) -> None:
    started = time.monotonic()
    work = Workload(faulty_app)
    before, during, after = Phase("before"), Phase("during"), Phase("after")
    t0 = time.monotonic()
    work.run_until(t0 + START_S - 1.0, before, base_url)
    assert all(not any(c.values()) for c in _faults(base_url).values())  # none yet
    time.sleep(max(0.0, t0 + START_S + 1.5 - time.monotonic()))
    work.run_until(t0 + START_S + DURATION_S - 0.5, during, base_url)
    time.sleep(max(0.0, t0 + START_S + DURATION_S + 1.0 - time.monotonic()))
    work.run_until(time.monotonic() + AFTER_S, after, base_url)
    time.sleep(1.0)  # the last fault counts reach the router (stats every 0.5 s)
    injected = _faults(base_url)
    work.run_until(time.monotonic() + 1.0, None, base_url)
    time.sleep(1.0)
    assert _faults(base_url) == injected  # nothing injected after the fault phase

    # Faults hit both replicas, and the router noticed them.
    assert len(injected) == 2
    for counts in injected.values():
        assert counts["dropped"] > 0 and counts["duplicated"] > 0 and counts["delayed"] > 0
    state = router_snapshot(base_url, APP)[QWEN]
    assert state["lost_batches"] > 0
    assert state["ignored_batches"] > 0
    assert state["snapshots"] > 2  # one per replica at subscription, then resyncs

    # Nothing failed; placement recovered.
    for phase in (before, during, after):
        assert phase.requests > 20, phase
        assert phase.errors == 0, phase
    assert after.hit_rate >= before.hit_rate - TOLERANCE, (before.hit_rate, after.hit_rate)

    # After the faults the index predicts the engines' cache hits exactly.
    def wrong(phase: Phase) -> tuple[int, list[float]]:
        """(decisions checked, times into the phase of the wrong predictions)."""
        checked = 0
        times: list[float] = []
        for rid, (cached, at) in phase.ids.items():
            decision = work.decisions.get(f"{rid}-0")
            if decision is not None:
                checked += 1
                if decision["exact_tokens"] != cached:
                    times.append(at)
        return checked, times

    after_checked, after_wrong = wrong(after)
    during_checked, during_wrong = wrong(during)
    recovery_s = max(after_wrong, default=0.0)
    assert after_checked > 20
    assert recovery_s < RECOVERY_S, after_wrong

    # Traffic stopped: the gateway router's index is each replica's cache.
    endpoints = {n: r["kv_snapshot"] for n, r in state["replicas"].items()}
    truth = wait_for(
        lambda: (
            (t := _truth(endpoints))
            == router_snapshot(base_url, APP, index=True)[QWEN]["exact_index"]
            and t
        ),
        10.0,
        "gateway router index equals the replicas' caches",
    )
    assert all(truth.values())

    # A router that joins now gets the same index from the replicas' snapshots.
    from ray import serve

    model = CONFIG.served_models(load_builtin_catalog())[0]
    handle = serve.get_deployment_handle(model.deployment_name, app_name=APP)
    handle.health.remote().result(timeout_s=HTTP_TIMEOUT_S)  # builds this process's router

    def late_index() -> dict[str, list[int]] | None:
        mine = snapshot_blocking(handle, include_index=True)
        if not mine or mine["snapshots"] < 2:
            return None
        index: dict[str, list[int]] = mine["exact_index"]
        return index if index == truth else None

    wait_for(late_index, 15.0, "a late router holds the replicas' caches")

    figures = {
        "hit_rate": {p.name: round(p.hit_rate, 4) for p in (before, during, after)},
        "requests": {p.name: p.requests for p in (before, during, after)},
        "errors": sum(p.errors for p in (before, during, after)),
        "injected": injected,
        "lost_batches": state["lost_batches"],
        "ignored_batches": state["ignored_batches"],
        "snapshots": state["snapshots"],
        "wrong_predictions": {
            "during": [len(during_wrong), during_checked],
            "after": [len(after_wrong), after_checked],
        },
        "recovery_s": round(recovery_s, 2),
        "test_s": round(time.monotonic() - started, 1),
    }
    print("KV-FAULTS " + json.dumps(figures, sort_keys=True))
