"""`EngineStats` from vLLM's own scheduler statistics.

vLLM hands every scheduler step's `SchedulerStats` to its stat loggers (the same numbers
its Prometheus metrics are made of). `StatsCollector.factory` is registered as one more
stat logger; it keeps the latest running / waiting / KV usage and sums the prefix-cache
token counters (`queries`, `hits` are per-step deltas, as in
`vllm:prefix_cache_{queries,hits}_total`).

The scheduler reports only when it steps, so after the last request leaves (or is aborted)
its last report may still count it. `snapshot(in_flight)` therefore reports 0 running /
waiting when the engine has no request in flight: this engine is the only client of its
vLLM instance, so that count is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vllm.config import VllmConfig
from vllm.v1.metrics.loggers import StatLoggerBase
from vllm.v1.metrics.stats import IterationStats, MultiModalCacheStats, SchedulerStats

from cluster.engine import EngineStats


@dataclass
class _Latest:
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0
    queries: int = 0
    hits: int = 0


class StatsCollector:
    def __init__(self) -> None:
        self._latest = _Latest()
        self.kv_blocks_total = 0
        self.block_size = 16

    def factory(self, vllm_config: VllmConfig, engine_index: int = 0) -> StatLoggerBase:
        """A per-engine stat logger factory for `AsyncLLM(stat_loggers=[...])`."""
        return _Recorder(self, vllm_config, engine_index)

    def record(self, stats: SchedulerStats) -> None:
        latest = self._latest
        latest.running = stats.num_running_reqs
        latest.waiting = stats.num_waiting_reqs + stats.num_skipped_waiting_reqs
        latest.kv_usage = min(1.0, max(0.0, float(stats.kv_cache_usage)))
        latest.queries += stats.prefix_cache_stats.queries
        latest.hits += stats.prefix_cache_stats.hits

    def snapshot(self, in_flight: int) -> EngineStats:
        latest = self._latest
        running = min(latest.running, in_flight)
        waiting = min(latest.waiting, in_flight - running)
        if in_flight and running + waiting == 0:
            waiting = in_flight  # admitted by us, not yet seen by the scheduler
        return EngineStats(
            running=running,
            waiting=waiting,
            kv_usage=latest.kv_usage,
            prefix_cache_queries=latest.queries,
            prefix_cache_hits=min(latest.hits, latest.queries),
            kv_blocks_total=self.kv_blocks_total,
            block_size=self.block_size,
        )


class _Recorder(StatLoggerBase):
    def __init__(
        self, collector: StatsCollector, vllm_config: VllmConfig, engine_index: int = 0
    ) -> None:
        self._collector = collector
        self.engine_index = engine_index

    def record(
        self,
        scheduler_stats: SchedulerStats | None,
        iteration_stats: IterationStats | None,
        mm_cache_stats: MultiModalCacheStats | None = None,
        engine_idx: int = 0,
    ) -> None:
        if scheduler_stats is not None:
            self._collector.record(scheduler_stats)

    def log_engine_initialized(self) -> None:
        return None

    def record_sleep_state(self, *args: Any, **kwargs: Any) -> None:
        return None
