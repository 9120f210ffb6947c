"""The shared Engine contract, run on SimEngine for every catalog model."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cluster.config import ModelDeployment, ServedModel, SimSettings, load_builtin_catalog
from deployments.engines.sim import RealClock, SimEngine, VirtualClock
from tests.contract.engine_contract import ContractContext, EngineContract

CATALOG = load_builtin_catalog()
MODEL_IDS = [spec.id for spec in CATALOG.models]


def served(model_id: str, **sim: object) -> ServedModel:
    spec = CATALOG.find(model_id)
    assert spec is not None
    settings = SimSettings.model_validate(sim)
    return ServedModel(spec=spec, deployment=ModelDeployment(id=model_id, sim=settings))


class TestSimEngineContract(EngineContract):
    """Virtual clock: steps take no wall time, results are reproducible."""

    @pytest.fixture(params=MODEL_IDS)
    async def contract(self, request: pytest.FixtureRequest) -> AsyncIterator[ContractContext]:
        model = served(request.param)
        engine = SimEngine(model, replica_id="sim-0", clock=VirtualClock())
        await engine.start()
        yield ContractContext.for_model(engine, model, timeout_s=10.0)
        await engine.shutdown()


class TestSimEngineContractRealClock(EngineContract):
    """Real time scaled by `speedup`, as a deployed simulator runs."""

    @pytest.fixture
    async def contract(self) -> AsyncIterator[ContractContext]:
        model = served("qwen/qwen3-coder-flash", speedup=200.0)
        engine = SimEngine(model, replica_id="sim-rt", clock=RealClock(200.0))
        await engine.start()
        yield ContractContext.for_model(engine, model, timeout_s=10.0)
        await engine.shutdown()
