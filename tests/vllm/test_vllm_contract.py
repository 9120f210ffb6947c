"""The shared Engine contract, run on real vLLM (CPU) with the tiny model."""

from __future__ import annotations

import pytest

from cluster.config.settings import ServedModel
from deployments.engines.vllm import VLLMEngine
from tests.contract.engine_contract import ContractContext, EngineContract

pytestmark = [pytest.mark.vllm, pytest.mark.asyncio(loop_scope="session")]


class TestVLLMEngineContract(EngineContract):
    @pytest.fixture
    def contract(self, tiny_engine: VLLMEngine, tiny_model: ServedModel) -> ContractContext:
        # vLLM's detokenizer may hold a token back (incomplete UTF-8), so content chunks
        # and tokens are not one-to-one; the model serves LoRA adapters (an unknown one is
        # tested in test_vllm_engine.py).
        return ContractContext.for_model(
            tiny_engine, tiny_model, one_chunk_per_token=False, timeout_s=60.0
        )
