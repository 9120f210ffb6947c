"""The simulator engine: stands in for GPUs we do not have (see docs/SIMULATOR.md).

Importable without Ray or vLLM: `modelyard bench route` drives its KV cache and scheduler
directly with a virtual clock.
"""

from deployments.engines.sim.clock import Clock, RealClock, VirtualClock
from deployments.engines.sim.engine import SimEngine
from deployments.engines.sim.kv_cache import BlockKVCache, block_hashes, request_extra_keys
from deployments.engines.sim.scheduler import Admitted, Scheduler, SimSequence, StepResult
from deployments.engines.sim.timing import (
    GPU_SPECS,
    Efficiency,
    GpuSpec,
    PerformanceModel,
    StepLoad,
)
from deployments.engines.sim.tokenizer import SimTokenizer, render_chat

__all__ = [
    "GPU_SPECS",
    "Admitted",
    "BlockKVCache",
    "Clock",
    "Efficiency",
    "GpuSpec",
    "PerformanceModel",
    "RealClock",
    "Scheduler",
    "SimEngine",
    "SimSequence",
    "SimTokenizer",
    "StepLoad",
    "StepResult",
    "VirtualClock",
    "block_hashes",
    "render_chat",
    "request_extra_keys",
]
