"""Real vLLM (CPU build) on a tiny model built at test time; one engine per session.

Everything is local: the model, tokenizer and LoRA adapter are generated into a temporary
folder (`tests/vllm/tiny.py`), nothing is downloaded. The engine is started once and shared
by every test in this folder (tests use fresh prompts, so they stay independent); async
tests here run on the session event loop (`loop_scope="session"`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

pytest.importorskip("vllm", reason="the vllm extra is not installed")

# Before anything starts vLLM: its sockets on loopback, a small CPU KV cache, no hub.
for _key, _value in {
    "VLLM_HOST_IP": "127.0.0.1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "HF_HUB_OFFLINE": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
}.items():
    os.environ.setdefault(_key, _value)

from cluster.config.catalog import LoraSettings, ModelSpec  # noqa: E402
from cluster.config.settings import ModelDeployment, ServedModel  # noqa: E402
from cluster.config.vllm_args import VLLMDeploymentSettings  # noqa: E402
from tests.vllm import tiny  # noqa: E402

MODEL_ID = "test/tiny-llama"
ADAPTER = "tiny-lora"


@dataclass(frozen=True)
class TinyArtifacts:
    model: Path
    lora: Path


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> TinyArtifacts:
    root = tmp_path_factory.mktemp("tiny-vllm")
    model = tiny.build_model(root / "model")
    return TinyArtifacts(model=model, lora=tiny.build_lora(root / "lora", model))


def tiny_served(artifacts: TinyArtifacts, **settings: object) -> ServedModel:
    spec = ModelSpec(
        id=MODEL_ID,
        display_name="Tiny random Llama (tests)",
        weights=str(artifacts.model),
        params_b=0.001,
        active_params_b=0.001,
        weight_bits=16,
        num_layers=tiny.LAYERS,
        kv_bytes_per_token=2 * tiny.LAYERS * tiny.KV_HEADS * tiny.HEAD_DIM * 4,
        context_window=tiny.MAX_LEN,
        tool_parser="hermes",
        lora=LoraSettings(max_loras=2, max_lora_rank=tiny.LORA_RANK),
    )
    vllm = VLLMDeploymentSettings(
        enforce_eager=True,
        dtype="float32",
        adapters={ADAPTER: str(artifacts.lora)},
        **settings,  # type: ignore[arg-type]
    )
    return ServedModel(spec=spec, deployment=ModelDeployment(id=MODEL_ID, engine="vllm", vllm=vllm))


@pytest.fixture(scope="session")
def tiny_model(tiny_artifacts: TinyArtifacts) -> ServedModel:
    return tiny_served(tiny_artifacts)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tiny_engine(tiny_model: ServedModel) -> AsyncIterator[object]:
    from deployments.engines.vllm import VLLMEngine

    engine = VLLMEngine(tiny_model, replica_id="vllm-test-0")
    await engine.start()
    try:
        yield engine
    finally:
        await engine.shutdown()
