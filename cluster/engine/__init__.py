"""The engine contract: what every engine (vLLM, simulator) takes, yields and reports."""

from cluster.engine.protocol import Engine
from cluster.engine.types import (
    EngineChunk,
    EngineRequest,
    EngineStats,
    KVEvent,
    KVEventBatch,
    SamplingParams,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "Engine",
    "EngineChunk",
    "EngineRequest",
    "EngineStats",
    "KVEvent",
    "KVEventBatch",
    "SamplingParams",
    "ToolCallDelta",
    "Usage",
]
