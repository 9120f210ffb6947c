"""Shared helpers for the request-router tests: simulated replicas with KV events."""

from __future__ import annotations

import asyncio

from cluster.api.messages import UserMessage
from cluster.config import ModelDeployment, ServedModel, SimSettings, load_builtin_catalog
from cluster.engine import EngineChunk, EngineRequest
from deployments.engines.sim import SimEngine, VirtualClock

CATALOG = load_builtin_catalog()
QWEN = "qwen/qwen3-coder-flash"
MINIMAX = "minimax/minimax-m1"
AWQ = "casperhansen/mistral-small-24b-instruct-2501-awq"
PREFIX = " ".join(f"Clause {i}: the router keeps a prefix where its cache is." for i in range(30))


def served(model_id: str = QWEN, engine: str = "sim", **sim: object) -> ServedModel:
    spec = CATALOG.find(model_id)
    assert spec is not None
    deployment = ModelDeployment(id=model_id, engine=engine, sim=SimSettings.model_validate(sim))
    return ServedModel(spec=spec, deployment=deployment)


def chat(request_id: str, text: str, **fields: object) -> EngineRequest:
    return EngineRequest.model_validate(
        {
            "request_id": request_id,
            "model": "m",
            "messages": [UserMessage(role="user", content=text)],
            "max_tokens": 2,
            **fields,
        }
    )


async def run(engine: SimEngine, request: EngineRequest) -> list[EngineChunk]:
    async with asyncio.timeout(10):
        return [c async for c in engine.generate(request)]


async def started(model: ServedModel, replica_id: str) -> SimEngine:
    engine = SimEngine(model, replica_id=replica_id, clock=VirtualClock())
    await engine.start()
    return engine


async def settle(seconds: float = 0.05) -> None:
    """Let publishers, ZMQ and subscribers move frames along."""
    await asyncio.sleep(seconds)
