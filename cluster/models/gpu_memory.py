"""GPU memory arithmetic of one replica: weights + KV cache per GPU, from catalog facts.

    weights           = params x weight_bits / 8                 (whole model, bytes)
    weights / GPU     = weights / (tensor x pipeline)            (TP slices, PP splits layers,
                                                                  EP spreads experts: same sum)
    budget / GPU      = gpu_bytes x gpu_memory_utilization        (what vLLM may use)
    KV / GPU          = budget - weights/GPU - runtime_overhead   (activations, graphs, NCCL)
    KV per token/GPU  = kv_bytes_per_token / (tensor x pipeline)  (TP splits KV heads, PP
                                                                  splits layers)
    tokens / replica  = KV / GPU  /  KV per token / GPU
    full contexts     = tokens / replica  /  max_model_len

These are planning numbers: quantised checkpoints keep some tensors (embeddings, scales) at
16 bits, and vLLM measures the real overhead at start-up (its log prints the KV capacity).
Run `python -m cluster.models.gpu_memory` for the table of the built-in catalog on H100s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from cluster.config.catalog import ModelSpec, load_builtin_catalog

GIB = 1024**3
#: H100 SXM 80 GB as `nvidia-smi` reports it (81,559 MiB).
H100_BYTES = 81_559 * 1024**2
#: Activations, CUDA graphs, NCCL buffers, sampler: a planning allowance per GPU.
RUNTIME_OVERHEAD_BYTES = 4 * GIB


class ReplicaMemory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    gpus: int
    weights_bytes: int
    weights_per_gpu: int
    budget_per_gpu: int
    kv_per_gpu: int
    kv_per_token_per_gpu: float
    max_model_len: int

    @property
    def fits(self) -> bool:
        return self.kv_per_gpu > 0

    @property
    def kv_tokens(self) -> int:
        if not self.fits or self.kv_per_token_per_gpu <= 0:
            return 0
        return int(self.kv_per_gpu // self.kv_per_token_per_gpu)

    @property
    def full_contexts(self) -> float:
        return self.kv_tokens / self.max_model_len


def replica_memory(
    spec: ModelSpec,
    *,
    gpu_bytes: int = H100_BYTES,
    utilization: float = 0.90,
    overhead_bytes: int = RUNTIME_OVERHEAD_BYTES,
    max_model_len: int | None = None,
) -> ReplicaMemory:
    gpus = spec.parallelism.gpus
    weights = int(spec.params_b * 1e9 * spec.weight_bits / 8)
    per_gpu = weights // gpus
    budget = int(gpu_bytes * utilization)
    return ReplicaMemory(
        model_id=spec.id,
        gpus=gpus,
        weights_bytes=weights,
        weights_per_gpu=per_gpu,
        budget_per_gpu=budget,
        kv_per_gpu=budget - per_gpu - overhead_bytes,
        kv_per_token_per_gpu=spec.kv_bytes_per_token / gpus,
        max_model_len=max_model_len or spec.context_window,
    )


def render_table(rows: Sequence[ReplicaMemory]) -> str:
    header = (
        "model | GPUs | weights (GiB) | weights/GPU | KV/GPU | KV/token/GPU | "
        "KV tokens/replica | full contexts"
    )
    lines = [header, "|".join(["---"] * 8)]
    for r in rows:
        lines.append(
            f"{r.model_id} | {r.gpus} | {r.weights_bytes / GIB:.1f} | "
            f"{r.weights_per_gpu / GIB:.1f} | {r.kv_per_gpu / GIB:.1f} | "
            f"{r.kv_per_token_per_gpu / 1024:.1f} KiB | {r.kv_tokens:,} | {r.full_contexts:.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    rows = [replica_memory(spec) for spec in load_builtin_catalog().models]
    print(
        f"H100 {H100_BYTES / GIB:.1f} GiB, gpu_memory_utilization 0.90, "
        f"{RUNTIME_OVERHEAD_BYTES / GIB:.0f} GiB runtime overhead per GPU"
    )
    print(render_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
