"""What one model replica reports to the autoscaler (`ModelReplica.record_autoscaling_stats`).

`ReplicaSignals` keeps the numbers that need memory: the time to first token of the
last `ttft_window` requests (their mean is `recent_ttft_s`), the engine's cumulative
prompt tokens at the previous report (the difference over the time between reports is
`prompt_tokens_per_s`; vLLM's `prefix_cache_queries` counts every prompt token scheduled,
and when a model has no prefix caching the prompt tokens of finished requests are used),
and the seconds during which at least one request was not yet answered (`arrived` ...
`answered`: the difference over the time between reports is `busy`). The busy time is
measured at the replica, around the engine, the same way for the simulator and vLLM:
it is the time a prompt was queued in the engine or being prefilled, not a reading of
the engine's step timer (vLLM exposes none per step); with chunked prefill, vLLM computes
prompt tokens in every step while one is pending, so the two agree up to the first
token's delivery. The clock is injected so the class is tested without sleeping.
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
        self._awaiting = 0
        self._busy_s = 0.0
        self._busy_mark = self._last_at
        self._last_busy_s = 0.0
        self.last_busy = 0.0

    def _advance(self) -> None:
        now = self._clock()
        if self._awaiting > 0:
            self._busy_s += now - self._busy_mark
        self._busy_mark = now

    def arrived(self) -> None:
        """A request reached the replica (it waits for its first token from now)."""
        self._advance()
        self._awaiting += 1

    def answered(self) -> None:
        """A request got its first token, or ended without one (error, abort)."""
        self._advance()
        self._awaiting = max(self._awaiting - 1, 0)

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
        self._advance()
        busy = self._busy_s - self._last_busy_s
        self._last_busy_s = self._busy_s
        self.last_busy = min(max(busy / elapsed, 0.0), 1.0) if elapsed > 0 else 0.0
        ttft = self.recent_ttft_s()
        return {
            ReplicaSignal.RUNNING.value: float(stats.running),
            ReplicaSignal.WAITING.value: float(stats.waiting),
            ReplicaSignal.KV_USAGE.value: float(stats.kv_usage),
            ReplicaSignal.RECENT_TTFT_S.value: ttft,
            ReplicaSignal.PROMPT_TOKENS_PER_S.value: rate,
            ReplicaSignal.BUSY.value: self.last_busy,
        }
