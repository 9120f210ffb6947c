"""What one model replica reports to the autoscaler (`ModelReplica.record_autoscaling_stats`).

`ReplicaSignals` keeps the two numbers that need memory: the time to first token of the
last `ttft_window` requests (their mean is `recent_ttft_s`), and the engine's cumulative
prompt tokens at the previous report (the difference over the time between reports is
`prompt_tokens_per_s`; vLLM's `prefix_cache_queries` counts every prompt token scheduled,
and when a model has no prefix caching the prompt tokens of finished requests are used).
The clock is injected so the class is tested without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from cluster.engine import EngineStats
from cluster.engine.signals import ReplicaSignal


class ReplicaSignals:
    def __init__(self, ttft_window: int = 32, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttfts: deque[float] = deque(maxlen=ttft_window)
        self._clock = clock
        self._last_at = clock()
        self._last_prompt_tokens = 0
        self._finished_prompt_tokens = 0

    def first_token(self, seconds: float) -> None:
        self._ttfts.append(seconds)

    def finished(self, prompt_tokens: int) -> None:
        self._finished_prompt_tokens += prompt_tokens

    def recent_ttft_s(self) -> float:
        """Mean time to first token of the last `ttft_window` requests (0.0: none yet)."""
        return sum(self._ttfts) / len(self._ttfts) if self._ttfts else 0.0

    def report(self, stats: EngineStats) -> dict[str, float]:
        now = self._clock()
        total = stats.prefix_cache_queries or self._finished_prompt_tokens
        elapsed = now - self._last_at
        rate = max(total - self._last_prompt_tokens, 0) / elapsed if elapsed > 0 else 0.0
        self._last_at, self._last_prompt_tokens = now, total
        ttft = self.recent_ttft_s()
        return {
            ReplicaSignal.RUNNING.value: float(stats.running),
            ReplicaSignal.WAITING.value: float(stats.waiting),
            ReplicaSignal.KV_USAGE.value: float(stats.kv_usage),
            ReplicaSignal.RECENT_TTFT_S.value: ttft,
            ReplicaSignal.PROMPT_TOKENS_PER_S.value: rate,
        }
