"""Continuous batching as a pure state machine (no clock, no asyncio, no randomness).

`Scheduler.step()` plans and "runs" one engine step, the way vLLM v1 schedules:

1. Running sequences first, in admission order. Each needs `prompt + generated - computed`
   tokens computed (its prompt, in chunks, then one token per step). It gets
   `min(need, budget)` of the step's `max_num_batched_tokens` budget (chunked prefill).
   If its KV would outgrow its blocks it takes one more block; when the cache has none
   (after evicting LRU unreferenced blocks) the newest running sequence is preempted:
   its blocks are released and it goes back to the front of the queue, to recompute
   `prompt + generated` tokens when readmitted (its cached prefix may still hit).
2. Then, unless something was preempted this step, waiting sequences in FIFO order while
   fewer than `max_num_seqs` run and budget is left: each acquires blocks for its whole
   current context (hashed full prompt blocks + anonymous rest) or, if the cache cannot
   hold it, waits (head-of-line, as vLLM). Its leading cached blocks are not recomputed;
   at most `prompt + generated - 1` tokens can come from the cache.
3. A sequence whose computed tokens reach `prompt + generated` emits one token in this
   step; at `max_output_tokens` it finishes and releases its blocks.
4. The step's duration comes from the `StepTimer` (the performance model) applied to the
   scheduled (new tokens, context) pairs, so it grows with batch size and context.

The same `step()` serves the real-time engine loop and a discrete-event replay with a
virtual clock: call it, advance your clock by `duration_s`, deliver what it reports.
Given the same inputs in the same order, the results are identical.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cluster.config import ModelSpec, SimSettings
from deployments.engines.sim.kv_cache import BlockKVCache, EventSink
from deployments.engines.sim.timing import GPU_SPECS, Efficiency, PerformanceModel, StepLoad


class StepTimer(Protocol):
    def step_time(self, load: StepLoad) -> float: ...


@dataclass(frozen=True, slots=True)
class SimSequence:
    """A request as the scheduler sees it.

    `block_hashes` are the chained hashes of the prompt's full blocks (the cache's
    `block_size`); `block_token_ids` their tokens, carried by `stored` KV events when given.
    `max_output_tokens` is how many tokens it generates before finishing.
    """

    seq_id: str
    prompt_tokens: int
    max_output_tokens: int
    block_hashes: Sequence[int] = ()
    block_token_ids: Sequence[int] | None = None
    lora_name: str | None = None
    cache_salt: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    seq_id: str
    cached_tokens: int
    resumed: bool  # readmitted after a preemption


@dataclass(slots=True)
class StepResult:
    duration_s: float
    emitted: dict[str, int] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)
    admitted: list[Admitted] = field(default_factory=list)
    preempted: list[str] = field(default_factory=list)
    scheduled_tokens: int = 0


@dataclass(slots=True)
class _State:
    seq: SimSequence
    computed: int = 0
    generated: int = 0
    blocks: int = 0
    admissions: int = 0

    @property
    def total(self) -> int:
        return self.seq.prompt_tokens + self.generated


class Scheduler:
    def __init__(
        self,
        cache: BlockKVCache,
        timer: StepTimer,
        *,
        max_num_seqs: int = 256,
        max_num_batched_tokens: int = 8192,
    ) -> None:
        if max_num_seqs < 1 or max_num_batched_tokens < 1:
            raise ValueError("max_num_seqs and max_num_batched_tokens must be >= 1")
        self.cache = cache
        self.timer = timer
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self._waiting: deque[_State] = deque()
        self._running: list[_State] = []
        self._ids: set[str] = set()

    @classmethod
    def for_model(
        cls,
        spec: ModelSpec,
        settings: SimSettings,
        *,
        on_events: EventSink | None = None,
        efficiency: Efficiency | None = None,
    ) -> Scheduler:
        """One replica's scheduler, cache and timing as `SimSettings` describe them: KV
        capacity from `settings.kv_blocks` or GPU memory, caching as `spec.prefix_caching`."""
        performance = PerformanceModel(spec, GPU_SPECS[settings.gpu], efficiency)
        capacity = settings.kv_blocks or performance.kv_capacity_blocks(settings.block_size)
        cache = BlockKVCache(
            capacity, settings.block_size, caching=spec.prefix_caching, on_events=on_events
        )
        return cls(
            cache,
            performance,
            max_num_seqs=settings.max_num_seqs,
            max_num_batched_tokens=settings.max_num_batched_tokens,
        )

    # ---- queue -----------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        return len(self._waiting)

    @property
    def has_work(self) -> bool:
        return bool(self._running or self._waiting)

    def max_tokens_per_sequence(self) -> int:
        """The most tokens (prompt + output) one sequence can ever hold in the cache."""
        return self.cache.capacity * self.cache.block_size

    def add(self, seq: SimSequence) -> None:
        if seq.seq_id in self._ids:
            raise ValueError(f"sequence {seq.seq_id!r} is already scheduled")
        if seq.max_output_tokens < 1 or seq.prompt_tokens < 1:
            raise ValueError("a sequence needs at least one prompt and one output token")
        if seq.prompt_tokens + seq.max_output_tokens > self.max_tokens_per_sequence():
            raise ValueError(
                f"sequence {seq.seq_id!r} needs {seq.prompt_tokens + seq.max_output_tokens} "
                f"tokens of KV cache; the cache holds {self.max_tokens_per_sequence()}"
            )
        self._ids.add(seq.seq_id)
        self._waiting.append(_State(seq))

    def abort(self, seq_id: str) -> bool:
        """Drop a sequence wherever it is and free its blocks. False if unknown."""
        if seq_id not in self._ids:
            return False
        self._ids.discard(seq_id)
        self.cache.release(seq_id)
        self._running = [s for s in self._running if s.seq.seq_id != seq_id]
        self._waiting = deque(s for s in self._waiting if s.seq.seq_id != seq_id)
        return True

    # ---- one step --------------------------------------------------------------------

    def step(self) -> StepResult:
        result = StepResult(duration_s=0.0)
        budget = self.max_num_batched_tokens
        items: list[tuple[int, int]] = []
        i = 0
        while i < len(self._running) and budget > 0:
            state = self._running[i]
            n = min(state.total - state.computed, budget)
            if not self._reserve(state, state.computed + n, result):
                continue  # `state` itself was preempted (it was the last one running)
            items.append((n, state.computed))
            budget -= n
            self._advance(state, n, result)
            i += 1
        if not result.preempted:
            budget = self._admit(budget, items, result)
        for seq_id in result.finished:
            self._ids.discard(seq_id)
            self.cache.release(seq_id)
        if result.finished:
            done = set(result.finished)
            self._running = [s for s in self._running if s.seq.seq_id not in done]
        result.scheduled_tokens = self.max_num_batched_tokens - budget
        result.duration_s = self.timer.step_time(StepLoad.of(items))
        return result

    def _admit(self, budget: int, items: list[tuple[int, int]], result: StepResult) -> int:
        bs = self.cache.block_size
        while self._waiting and budget > 0 and len(self._running) < self.max_num_seqs:
            state = self._waiting[0]
            seq = state.seq
            hashes = seq.block_hashes
            blocks = math.ceil(state.total / bs)
            hits = self.cache.acquire(
                seq.seq_id,
                hashes,
                extra_blocks=max(0, blocks - len(hashes)),
                token_ids=seq.block_token_ids,
                lora_name=seq.lora_name,
                cache_salt=seq.cache_salt,
                query_tokens=seq.prompt_tokens,
                max_hit_blocks=(state.total - 1) // bs,
            )
            if hits is None:
                break
            self._waiting.popleft()
            state.blocks = max(blocks, len(hashes))
            state.computed = hits * bs
            result.admitted.append(Admitted(seq.seq_id, state.computed, state.admissions > 0))
            state.admissions += 1
            self._running.append(state)
            n = min(state.total - state.computed, budget)
            items.append((n, state.computed))
            budget -= n
            self._advance(state, n, result)
        return budget

    def _advance(self, state: _State, n: int, result: StepResult) -> None:
        state.computed += n
        if state.computed < state.total:
            return
        state.generated += 1
        result.emitted[state.seq.seq_id] = 1
        if state.generated >= state.seq.max_output_tokens:
            result.finished.append(state.seq.seq_id)

    def _reserve(self, state: _State, tokens: int, result: StepResult) -> bool:
        """Make `state` hold blocks for `tokens`; preempt from the back. False: preempted."""
        need = math.ceil(tokens / self.cache.block_size) - state.blocks
        while need > 0:
            if self.cache.grow(state.seq.seq_id, need):
                state.blocks += need
                return True
            victim = self._running[-1]
            self._preempt(victim, result)
            if victim is state:
                return False
        return True

    def _preempt(self, state: _State, result: StepResult) -> None:
        self._running.remove(state)
        self.cache.release(state.seq.seq_id)
        state.computed = 0
        state.blocks = 0
        self._waiting.appendleft(state)
        result.preempted.append(state.seq.seq_id)
