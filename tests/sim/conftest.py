"""Shared pieces for trace replays: the Mooncake traces and simulated replicas."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.replay import ReplicaFactory
from bench.route_cmd import sim_factory
from bench.trace import TraceRequest, load_trace
from cluster.config import ModelSpec, load_builtin_catalog

TRACES = Path(__file__).resolve().parents[3] / "shared" / "traces"
CONVERSATION = TRACES / "conversation_trace.jsonl"


def model(name: str) -> ModelSpec:
    spec = load_builtin_catalog().find(name)
    assert spec is not None
    return spec


def replicas(name: str = "qwen/qwen3-coder-flash", *, kv_blocks: int = 4000) -> ReplicaFactory:
    return sim_factory(model(name), kv_blocks=kv_blocks, block_tokens=512)


@pytest.fixture(scope="session")
def conversation() -> list[TraceRequest]:
    if not CONVERSATION.exists():
        pytest.skip(f"{CONVERSATION} is not present")
    return load_trace(CONVERSATION, 500)
