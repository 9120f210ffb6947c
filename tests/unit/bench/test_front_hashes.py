"""`modelyard sim front` tokenises and hashes a prompt exactly as the simulated replica does,
so the replica's KV events confirm the front's own prefix entries (no translation)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.sim_serve_cmd import front_replicas, sim_prompt_blocks
from cluster.config import ClusterConfig, ModelDeployment, SimSettings, load_builtin_catalog
from cluster.engine import EngineRequest, KVEvent
from cluster.errors import ConfigError
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
TEXT = " shared" * 200 + " tail" * 30


async def _stored_hashes(request: EngineRequest, block_size: int) -> list[int]:
    deployment = ModelDeployment(id=QWEN, sim=SimSettings(kv_blocks=1024, block_size=block_size))
    (model,) = ClusterConfig(models=[deployment]).served_models(load_builtin_catalog())
    engine = SimEngine(model, replica_id="r0", clock=VirtualClock())
    await engine.start()
    events = engine.kv_events()
    try:
        async for _ in engine.generate(request):
            pass
        batch = await anext(events)
    finally:
        await engine.shutdown()
    stored: list[KVEvent] = [e for e in batch.events if e.type == "stored"]
    return [h for e in stored for h in e.block_hashes]


@pytest.mark.parametrize("block_size", [16, 64])
@pytest.mark.parametrize("api", ["completions", "chat"])
async def test_front_hashes_equal_the_replicas_event_hashes(api: str, block_size: int) -> None:
    body: dict[str, Any] = {"model": QWEN, "max_tokens": 2}
    if api == "chat":
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": TEXT}]
        body["messages"] = messages
        request = EngineRequest.model_validate(
            {"request_id": "q", "model": QWEN, "messages": messages, "max_tokens": 2}
        )
        path = "/v1/chat/completions"
    else:
        body["prompt"] = TEXT
        request = EngineRequest(request_id="q", model=QWEN, prompt=TEXT, max_tokens=2)
        path = "/v1/completions"
    hashes, prompt_tokens = sim_prompt_blocks(block_size)(path, json.dumps(body).encode())
    assert hashes == await _stored_hashes(request, block_size)
    assert len(hashes) == prompt_tokens // block_size


@pytest.mark.parametrize(
    ("specs", "ok"),
    [
        (["http://127.0.0.1:1", "http://127.0.0.1:2,tcp://127.0.0.1:3"], True),
        (["127.0.0.1:1"], False),
    ],
)
def test_front_replica_specs(specs: list[str], ok: bool) -> None:
    if not ok:
        with pytest.raises(ConfigError):
            front_replicas(specs)
        return
    replicas = front_replicas(specs)
    assert [r.replica_id for r in replicas] == ["replica-0", "replica-1"]
    assert replicas[0].kv_events is None and replicas[1].kv_events == "tcp://127.0.0.1:3"
