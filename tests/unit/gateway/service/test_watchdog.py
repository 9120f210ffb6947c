"""The stall watchdog (`gateway.stall_timeout_s`): an engine request that makes no progress
is aborted, the client gets an error instead of waiting forever, and the engine's batch
slot and KV blocks are freed.

The engine is a real `SimEngine` on a clock whose speed the test controls: normal speed
first, then a simulated GPU so slow that the next step takes days — a stalled engine.
Every test is bounded by pytest-timeout: a hang fails within seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cluster.config import ClusterConfig, GatewaySettings, ModelDeployment, load_builtin_catalog
from cluster.gateway.http import build_gateway_app
from cluster.gateway.http.sse import parse_events
from cluster.gateway.service import EngineBackend
from deployments.engines.sim import SimEngine

QWEN = "qwen/qwen3-coder-flash"
STALL_S = 0.5
pytestmark = pytest.mark.timeout(20)


class DialClock:
    """Real time times `speed` simulated seconds per wall second; the speed can change,
    by hand or after `stall_after` engine steps (each step sleeps once)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.stall_after: int | None = None
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        """In short naps, so that a change of speed takes effect mid-sleep."""
        if self.stall_after is not None:
            if self.stall_after == 0:
                self.speed = STALLED
            self.stall_after -= 1
        left = max(0.0, seconds)
        while left > 0:
            nap = min(0.01, left / self.speed)
            await asyncio.sleep(nap)
            left -= nap * self.speed


FAST, STALLED = 1000.0, 1e-6


@pytest.fixture
async def rig() -> AsyncIterator[tuple[httpx.AsyncClient, SimEngine, DialClock]]:
    config = ClusterConfig(
        gateway=GatewaySettings(stall_timeout_s=STALL_S), models=[ModelDeployment(id=QWEN)]
    )
    served = config.served_models(load_builtin_catalog())
    clock = DialClock(FAST)
    engine = SimEngine(served[0], replica_id="stall-0", clock=clock)
    backend = EngineBackend({QWEN: engine})
    await backend.start()
    app = build_gateway_app(config, served, backend)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client, engine, clock
    await backend.shutdown()


def chat(**extra: Any) -> dict[str, Any]:
    return {"model": QWEN, "messages": [{"role": "user", "content": "tell me a story"}], **extra}


async def freed(engine: SimEngine) -> None:
    """The engine holds no request and no KV block (allowing the loop one turn to settle)."""
    for _ in range(50):
        stats = engine.stats()
        if stats.running == 0 and stats.waiting == 0 and stats.kv_usage == 0.0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"engine still holds work: {engine.stats()}")


@pytest.mark.parametrize("n", [1, 2])
async def test_a_stalled_engine_gets_a_504_and_frees_its_slot(
    rig: tuple[httpx.AsyncClient, SimEngine, DialClock], n: int
) -> None:
    client, engine, clock = rig
    clock.speed = STALLED
    started = time.monotonic()
    response = await client.post("/v1/chat/completions", json=chat(n=n, max_tokens=50))
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "engine_stalled"
    assert error["type"] == "timeout"
    assert time.monotonic() - started < STALL_S + 3
    await freed(engine)
    clock.speed = FAST  # the engine serves the next request
    ok = await client.post("/v1/chat/completions", json=chat(max_tokens=5))
    assert ok.status_code == 200, ok.text


async def test_a_stream_that_stalls_mid_way_ends_with_an_error_event(
    rig: tuple[httpx.AsyncClient, SimEngine, DialClock],
) -> None:
    client, engine, clock = rig
    clock.stall_after = 6  # prefill and a few tokens, then no progress at all
    body = chat(n=2, max_tokens=400, stream=True)
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    events = [e if e == "[DONE]" else json.loads(e) for e in parse_events(response.content)]
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "engine_stalled"
    assert any(e.get("choices") for e in events[:-2])  # it had started streaming
    await freed(engine)
