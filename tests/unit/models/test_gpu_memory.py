"""The GPU memory arithmetic of docs/GPU_DEPLOYMENT.md (formulas in cluster.models.gpu_memory)."""

from __future__ import annotations

import pytest

from cluster.config import load_builtin_catalog
from cluster.models.gpu_memory import GIB, H100_BYTES, main, replica_memory

CATALOG = load_builtin_catalog()


@pytest.mark.parametrize(
    ("model_id", "gpus", "weights_gib", "kv_token_kib", "min_contexts"),
    [
        ("mistralai/devstral-small", 2, 44.0, 80.0, 4),
        ("minimax/minimax-m1", 16, 849.4, 2.5, 6),
        ("qwen/qwen3-coder-flash", 2, 56.8, 48.0, 6),
        ("casperhansen/mistral-small-24b-instruct-2501-awq", 1, 11.0, 160.0, 11),
    ],
)
def test_catalog_models_on_h100(
    model_id: str, gpus: int, weights_gib: float, kv_token_kib: float, min_contexts: int
) -> None:
    spec = CATALOG.find(model_id)
    assert spec is not None
    memory = replica_memory(spec)
    assert memory.gpus == gpus and memory.fits
    assert round(memory.weights_bytes / GIB, 1) == weights_gib
    assert memory.kv_per_token_per_gpu / 1024 == kv_token_kib
    assert memory.full_contexts >= min_contexts
    # The formula, spelled out once more.
    assert memory.kv_per_gpu == int(H100_BYTES * 0.9) - memory.weights_per_gpu - 4 * GIB
    assert memory.kv_tokens == int(memory.kv_per_gpu // memory.kv_per_token_per_gpu)


def test_a_model_that_does_not_fit_one_gpu() -> None:
    spec = CATALOG.find("qwen/qwen3-coder-flash")
    assert spec is not None
    tp1 = spec.parallelism.model_copy(update={"tensor": 1})
    one_gpu = spec.model_copy(update={"parallelism": tp1})
    small = replica_memory(one_gpu, gpu_bytes=40 * GIB)
    assert not small.fits and small.kv_tokens == 0


def test_table_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 + 2 + len(CATALOG.models)  # banner, header, rule, rows
