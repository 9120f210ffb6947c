"""Build the engine a served model asks for (`ModelDeployment.engine`).

Engines are imported lazily: a replica hosting the simulator never imports vLLM, and a
cluster without vLLM installed fails with a `ConfigError` that names the field, at replica
start, instead of an ImportError deep inside Ray.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import cast

from cluster.config.settings import ServedModel
from cluster.engine import Engine
from cluster.errors import ConfigError

_VLLM_MODULE = "deployments.engines.vllm"


def build_engine(
    model: ServedModel, *, replica_id: str, ray_bundle_indices: Sequence[int] | None = None
) -> Engine:
    """A new, not yet started engine for one replica of `model`.

    `ray_bundle_indices`: the replica's GPU bundles in rank order
    (`cluster.placement.rank_bundles`), for an engine that starts one worker per GPU
    in the replica's placement group (vLLM's Ray executor). None = no GPUs reserved.
    """
    kind = model.deployment.engine
    if kind == "sim":
        from deployments.engines.sim import SimEngine

        return SimEngine(model, replica_id=replica_id)
    if kind == "vllm":
        return _build_vllm(model, replica_id=replica_id, ray_bundle_indices=ray_bundle_indices)
    raise ConfigError(f"models[{model.id}].engine: unknown engine {kind!r}", param="engine")


def _build_vllm(
    model: ServedModel, *, replica_id: str, ray_bundle_indices: Sequence[int] | None
) -> Engine:
    try:
        module = importlib.import_module(_VLLM_MODULE)
    except ModuleNotFoundError as err:
        missing = err.name or "?"
        raise ConfigError(
            f"models[{model.id}].engine: 'vllm' is not available here (cannot import "
            f"{missing!r}); install the vllm extra (`pip install -e .[vllm]`) or use "
            "engine: sim",
            param="engine",
        ) from None
    engine_cls = getattr(module, "VLLMEngine", None)
    if engine_cls is None:
        raise ConfigError(
            f"models[{model.id}].engine: {_VLLM_MODULE} has no VLLMEngine", param="engine"
        )
    engine = engine_cls(model, replica_id=replica_id, ray_bundle_indices=ray_bundle_indices)
    return cast(Engine, engine)
