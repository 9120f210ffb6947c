"""The simulator's performance model: how long one continuous-batching step takes.

One engine step runs, for every scheduled sequence, `new` tokens on top of `context`
tokens already in its KV cache (a decode step is `new = 1`, a prefill chunk is larger).
With T = tensor-parallel GPUs (one pipeline stage), F = dense bf16 FLOP/s per GPU,
B = HBM bytes/s per GPU:

    compute  = (2 * active_params * sum(new) + gqa * kv_bytes_per_token * sum(pairs)) / (T F mfu)
    weights  = weight_bytes_read(sequences) / (T B bw_eff)
    kv_read  = kv_bytes_per_token * sum(context + new) / (T B bw_eff)
    comm     = 2 * num_layers * allreduce_s            (only when T > 1)
    step     = overhead + max(compute, weights) + kv_read + comm

- `2 * active_params` FLOPs per token is the matmul cost of a forward pass (one multiply and
  one add per weight used). MoE models use `active_params_b`.
- `pairs` = new * context + new * (new + 1) / 2 is the number of causal (query, key) pairs;
  each costs `4 * layers * q_heads * head_dim` FLOPs (QK^T and AV). Since
  `kv_bytes_per_token = 4 * layers * kv_heads * head_dim` (K and V, 2 bytes each), that is
  `gqa * kv_bytes_per_token` with gqa = q_heads / kv_heads (4 for Devstral and Mistral Small;
  we use 4 for every model - 8 for Qwen3-Coder and MiniMax would double a term that matters
  only at long context).
- `weight_bytes_read(n)` for a step holding n sequences: a dense model reads all its weights;
  a MoE model reads the experts its tokens touch. With f = active / total parameters, the
  expected fraction touched by n independent tokens is 1 - (1 - f)^n (f at n = 1, -> 1 as n
  grows), times params * weight_bits / 8.
- Pipeline parallelism: a step passes through every stage in turn, each holding 1/P of the
  model on T GPUs, so its latency is the whole model's work on T GPUs; P only adds memory.
  (vLLM overlaps P micro-batches for throughput; that is not modelled: conservative.)
- Tensor parallelism: two all-reduces per layer, each costing a fixed latency.
- A prefill-heavy step is compute-bound (the max picks compute); a decode step is
  bandwidth-bound on weights plus the KV every running sequence reads, so decode time grows
  with the number of running sequences and their context lengths.

KV capacity: `floor((T * P * memory * memory_utilization - weight_bytes) /
(kv_bytes_per_token * block_size))` blocks, vLLM's `gpu_memory_utilization` (0.9) applied
the same way; activation and CUDA-graph memory are not subtracted. `SimSettings.kv_blocks`
overrides it.

Constants and their sources are listed in docs/SIMULATOR.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from cluster.config import ModelSpec
from cluster.config.settings import GpuKind
from cluster.errors import ConfigError

# KV capacity in blocks when a model stores no KV at all (kv_bytes_per_token == 0).
UNBOUNDED_KV_BLOCKS = 1 << 24


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """Datasheet numbers for one GPU (dense, no sparsity)."""

    name: str
    bf16_flops: float  # FLOP/s, dense bf16 tensor cores
    hbm_bandwidth: float  # bytes/s
    memory_bytes: float  # bytes of HBM


GPU_SPECS: Mapping[GpuKind, GpuSpec] = MappingProxyType(
    {
        # NVIDIA H100 SXM5 datasheet: 989 TFLOPS bf16 dense (1,979 with sparsity), 3.35 TB/s, 80 GB.
        "h100": GpuSpec("H100 SXM 80GB", 989e12, 3.35e12, 80e9),
        # NVIDIA H200 SXM datasheet: same compute as H100, 4.8 TB/s HBM3e, 141 GB.
        "h200": GpuSpec("H200 SXM 141GB", 989e12, 4.8e12, 141e9),
        # NVIDIA A100 SXM4 80GB datasheet: 312 TFLOPS bf16 dense, 2,039 GB/s, 80 GB.
        "a100": GpuSpec("A100 SXM 80GB", 312e12, 2.039e12, 80e9),
    }
)


@dataclass(frozen=True, slots=True)
class Efficiency:
    """How much of the datasheet a serving engine gets (see docs/SIMULATOR.md)."""

    mfu: float = 0.5  # model FLOPs utilisation of large prefill GEMMs
    bandwidth: float = 0.8  # achieved / peak HBM bandwidth in decode GEMVs and attention
    memory_utilization: float = 0.9  # vLLM's default gpu_memory_utilization
    step_overhead_s: float = 0.002  # scheduler + launch overhead per step (CUDA graphs)
    allreduce_s: float = 8e-6  # latency of one tensor-parallel all-reduce over NVLink
    gqa: float = 4.0  # query heads per KV head in the attention FLOP term


@dataclass(frozen=True, slots=True)
class StepLoad:
    """What one step computes, summed over its scheduled sequences."""

    sequences: int
    new_tokens: int
    attention_pairs: int
    kv_tokens_read: int

    @staticmethod
    def of(items: Sequence[tuple[int, int]]) -> StepLoad:
        """From (new_tokens, context_tokens) per scheduled sequence."""
        new = pairs = read = 0
        for n, c in items:
            new += n
            pairs += n * c + n * (n + 1) // 2
            read += c + n
        return StepLoad(len(items), new, pairs, read)


class PerformanceModel:
    """Step times and KV capacity for one model replica on one kind of GPU."""

    def __init__(self, spec: ModelSpec, gpu: GpuSpec, efficiency: Efficiency | None = None) -> None:
        self.spec = spec
        self.gpu = gpu
        self.eff = efficiency or Efficiency()
        self.gpus = spec.parallelism.gpus
        tensor = spec.parallelism.tensor
        self.weight_bytes = spec.params_b * 1e9 * spec.weight_bits / 8
        self._active_fraction = spec.active_params_b / spec.params_b
        self._flops = tensor * gpu.bf16_flops * self.eff.mfu
        self._bandwidth = tensor * gpu.hbm_bandwidth * self.eff.bandwidth
        self._comm_s = 2 * spec.num_layers * self.eff.allreduce_s if tensor > 1 else 0.0

    @classmethod
    def for_gpu(cls, spec: ModelSpec, gpu: GpuKind) -> PerformanceModel:
        return cls(spec, GPU_SPECS[gpu])

    def weight_bytes_read(self, sequences: int) -> float:
        """Weight bytes one step reads: 1 - (1 - f)^n of the weights (f = active/total)."""
        if sequences <= 0:
            return 0.0
        touched = 1.0 - (1.0 - self._active_fraction) ** sequences
        return self.weight_bytes * max(touched, self._active_fraction)

    def step_time(self, load: StepLoad) -> float:
        """Seconds for one step (0 for an empty step); formula in the module docstring."""
        if load.sequences == 0:
            return 0.0
        flops = (
            2.0 * self.spec.active_params_b * 1e9 * load.new_tokens
            + self.eff.gqa * self.spec.kv_bytes_per_token * load.attention_pairs
        )
        compute = flops / self._flops
        weights = self.weight_bytes_read(load.sequences) / self._bandwidth
        kv_read = self.spec.kv_bytes_per_token * load.kv_tokens_read / self._bandwidth
        return self.eff.step_overhead_s + max(compute, weights) + kv_read + self._comm_s

    def prefill_time(self, new_tokens: int, cached_tokens: int = 0) -> float:
        """One sequence's prefill of `new_tokens` on top of `cached_tokens`, as one step."""
        return self.step_time(StepLoad.of([(new_tokens, cached_tokens)]))

    def decode_step_time(self, contexts: Sequence[int]) -> float:
        """One decode step for running sequences with these context lengths."""
        return self.step_time(StepLoad.of([(1, c) for c in contexts]))

    def kv_capacity_blocks(self, block_size: int) -> int:
        """Blocks that fit in the memory the weights leave (module docstring)."""
        memory = self.gpus * self.gpu.memory_bytes * self.eff.memory_utilization
        free = memory - self.weight_bytes
        if free <= 0:
            raise ConfigError(
                f"{self.spec.id}: weights ({self.weight_bytes / 1e9:.0f} GB) do not fit in "
                f"{self.gpus} x {self.gpu.name} at {self.eff.memory_utilization:.0%} "
                "memory utilisation; choose a larger GPU in sim.gpu or more parallelism",
                param="sim.gpu",
            )
        if self.spec.kv_bytes_per_token == 0:
            return UNBOUNDED_KV_BLOCKS
        return max(1, int(free // (self.spec.kv_bytes_per_token * block_size)))
