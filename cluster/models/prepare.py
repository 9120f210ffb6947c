"""Prepare a model once: run its recipe into the cache with a progress bar.

`prepare_model` is idempotent: a model already in the cache returns at once
(`already_prepared=True`) unless `force`. `ensure_prepared` is what `modelyard up` calls
for the vLLM deployments of a cluster file: every deployment on vLLM without an explicit
`vllm.model_path` whose catalog id has a recipe is prepared if missing.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TextIO

from pydantic import BaseModel, ConfigDict

from cluster.config.settings import ServedModel
from cluster.errors import ConfigError
from cluster.models.cache import ModelCache
from cluster.models.recipes import Recipe


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> object: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[str, int], ProgressBar]


def tqdm_progress(stream: TextIO | None = None) -> ProgressFactory:
    """A factory of tqdm bars (one step per recipe step) on stderr."""

    def make(description: str, total: int) -> ProgressBar:
        from tqdm import tqdm

        bar: ProgressBar = tqdm(
            total=total,
            desc=description,
            unit="step",
            file=stream or sys.stderr,
            bar_format="{desc}: {n_fmt}/{total_fmt} {bar} {elapsed}{postfix}",
        )
        return bar

    return make


class PrepareResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    path: str
    seconds: float
    already_prepared: bool


def find_recipe(model_id: str, recipes: Sequence[Recipe]) -> Recipe:
    for recipe in recipes:
        if recipe.model_id == model_id:
            return recipe
    known = ", ".join(sorted(r.model_id for r in recipes)) or "none"
    raise ConfigError(f"no preparation recipe for {model_id!r} (known: {known})")


def prepare_model(
    model_id: str,
    *,
    cache: ModelCache,
    recipes: Sequence[Recipe],
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> PrepareResult:
    """Build `model_id` into `cache` once; raise `ConfigError` if it cannot be built."""
    started = time.monotonic()
    recipe = find_recipe(model_id, recipes)
    existing = cache.lookup(model_id)
    if existing is not None and not force:
        return PrepareResult(
            model_id=model_id,
            path=existing.path,
            seconds=time.monotonic() - started,
            already_prepared=True,
        )
    recipe.check_source()
    staging = cache.staging_dir(model_id)
    bar = (progress or tqdm_progress())(f"prepare {model_id}", len(recipe.steps))

    def advance(step: str) -> None:
        bar.set_postfix_str(f"{step} done")
        bar.update(1)

    try:
        recipe.build(staging, advance)
        info = cache.commit(
            model_id, staging, source=recipe.source, build_seconds=time.monotonic() - started
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        bar.close()
    return PrepareResult(
        model_id=model_id,
        path=info.path,
        seconds=time.monotonic() - started,
        already_prepared=False,
    )


def ensure_prepared(
    served: Sequence[ServedModel],
    *,
    cache: ModelCache,
    recipes: Sequence[Recipe],
    progress: ProgressFactory | None = None,
) -> list[PrepareResult]:
    """Prepare every vLLM deployment that relies on the cache and has a recipe."""
    known = {r.model_id for r in recipes}
    results = []
    for model in served:
        settings = model.deployment.vllm
        if model.deployment.engine != "vllm" or (settings and settings.model_path):
            continue
        if model.spec.id in known:
            results.append(
                prepare_model(model.spec.id, cache=cache, recipes=recipes, progress=progress)
            )
    return results
