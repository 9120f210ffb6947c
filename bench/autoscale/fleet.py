"""Simulated model replicas for the autoscaling replay: the simulator's timing model,
advanced in fixed ticks instead of engine step by engine step (so an hour of a fleet of
tens of replicas replays in seconds).

One replica admits requests from its waiting queue while it has a batch slot
(`max_num_seqs`) and KV room for the request's prompt and output (no preemption), and
runs continuous batching with chunked prefill. In each tick of `dt` seconds, with n
sequences decoding (context c_i each), p prefill tokens pending and token budget b
(`max_num_batched_tokens`):

    chunk = min(p, b - n)
    step  = PerformanceModel.step_time(n + prefilling sequences, n + chunk new tokens,
                                       sum(c_i) + n + chunk^2/2 attention pairs,
                                       sum(c_i) + n + chunk KV tokens read)
    k     = dt / step                          (steps this tick)

every decoding sequence gets k tokens, and k * chunk prefill tokens are processed in
arrival order; a request's first token and its last are timed by linear interpolation
inside the tick. Decoding progress is one counter per replica (a sequence finishes when
the counter passes its start + output - 1), so a tick costs O(events), not O(batch).
KV usage = tokens held by running sequences / KV capacity (`kv_capacity_blocks`).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from itertools import count

from deployments.engines.sim.timing import PerformanceModel, StepLoad


@dataclass(slots=True)
class Request:
    index: int
    arrival: float
    prompt: int
    output: int
    first: float | None = None
    done: float | None = None
    timed_out: bool = False
    prefill_left: int = 0
    d0: float = 0.0


@dataclass(frozen=True, slots=True)
class ReplicaShape:
    perf: PerformanceModel
    max_num_seqs: int
    budget_tokens: int
    kv_tokens: int


_seq = count()


@dataclass(slots=True)
class Replica:
    shape: ReplicaShape
    launched_at: float
    ready_at: float
    state: str = "starting"  # starting | ready | draining | stopped
    stopped_at: float | None = None
    waiting: deque[Request] = field(default_factory=deque)
    prefill: deque[Request] = field(default_factory=deque)
    decoding: list[tuple[float, int, Request]] = field(default_factory=list)
    counter: float = 0.0
    reserved: int = 0
    sum_prompt_dec: int = 0
    sum_d0: float = 0.0
    prefill_tokens: int = 0
    ttfts: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    @property
    def running(self) -> int:
        return len(self.prefill) + len(self.decoding)

    def vllm_counts(self) -> tuple[int, int]:
        """(running, waiting) as vLLM counts them: a request whose prefill has not started
        (queued behind the token budget) is still waiting."""
        started = sum(1 for r in self.prefill if r.prefill_left < r.prompt)
        in_step = max(started, 1 if self.prefill else 0)
        return len(self.decoding) + in_step, len(self.waiting) + len(self.prefill) - in_step

    @property
    def ongoing(self) -> int:
        return self.running + len(self.waiting)

    def backlog_tokens(self) -> int:
        """Prompt tokens routed here and not yet prefilled."""
        return self.prefill_tokens + sum(r.prompt for r in self.waiting)

    def recent_ttft_s(self) -> float:
        """Mean time to first token of the last 32 requests (what the replica reports)."""
        return sum(self.ttfts) / len(self.ttfts) if self.ttfts else 0.0

    def kv_usage(self) -> float:
        dec = self.sum_prompt_dec + len(self.decoding) * self.counter - self.sum_d0
        held = dec + sum(r.prompt - r.prefill_left for r in self.prefill)
        return min(1.0, held / self.shape.kv_tokens)

    def _admit(self) -> None:
        shape = self.shape
        while self.waiting and self.running < shape.max_num_seqs:
            req = self.waiting[0]
            need = req.prompt + req.output
            if self.reserved + need > shape.kv_tokens and self.running > 0:
                break
            self.waiting.popleft()
            self.reserved += need
            req.prefill_left = req.prompt
            self.prefill_tokens += req.prompt
            self.prefill.append(req)

    def _finish(self, req: Request, at: float, finished: list[Request]) -> None:
        req.done = at
        self.reserved -= req.prompt + req.output
        finished.append(req)

    def _step(self, decoders: int, chunk: int, prefilling: int) -> float:
        ctx = self.sum_prompt_dec + decoders * self.counter - self.sum_d0
        load = StepLoad(
            sequences=decoders + prefilling,
            new_tokens=decoders + chunk,
            attention_pairs=int(ctx + decoders + chunk * (chunk + 1) // 2),
            kv_tokens_read=int(ctx + decoders + chunk),
        )
        return self.shape.perf.step_time(load)

    def tick(self, t0: float, dt: float, finished: list[Request]) -> None:
        """Advance `dt` seconds of continuous batching (module docstring)."""
        self._admit()
        n = len(self.decoding)
        if n == 0 and not self.prefill:
            return
        start = self.counter
        # Phase 1: steps that carry prefill chunks, until the pending prefill is done.
        k1 = time1 = 0.0
        if self.prefill:
            chunk = max(1, min(self.prefill_tokens, self.shape.budget_tokens - n))
            step1 = self._step(n, chunk, min(len(self.prefill), chunk))
            k1 = min(dt / step1, self.prefill_tokens / chunk)
            time1 = k1 * step1
            self._prefill(t0, time1, k1 * chunk, start, k1, finished)
        # Phase 2: pure decode steps for the rest of the tick (newly prefilled included).
        k2 = 0.0
        rest = dt - time1
        decoders = len(self.decoding)
        if rest > 1e-9 and decoders:
            self.counter = start + k1
            k2 = rest / self._step(decoders, 0, 0)
        self.counter = start + k1 + k2
        while self.decoding and self.decoding[0][0] <= self.counter:
            end, _, req = heapq.heappop(self.decoding)
            self.sum_prompt_dec -= req.prompt
            self.sum_d0 -= req.d0
            if end <= start + k1 and k1 > 0:
                at = t0 + (end - start) / k1 * time1
            else:
                at = t0 + time1 + (end - start - k1) / k2 * rest if k2 > 0 else t0 + dt
            self._finish(req, max(at, req.first or at), finished)

    def _prefill(
        self,
        t0: float,
        span: float,
        capacity: float,
        start: float,
        steps: float,
        finished: list[Request],
    ) -> None:
        """Process `capacity` prefill tokens in arrival order over `span` seconds."""
        used = 0.0
        while self.prefill and used < capacity - 1e-6:
            req = self.prefill[0]
            room = capacity - used
            if req.prefill_left > room + 1e-6:  # partly prefilled: the rest next tick
                part = int(room)
                req.prefill_left -= part
                self.prefill_tokens -= part
                break
            used += req.prefill_left
            self.prefill_tokens -= req.prefill_left
            req.prefill_left = 0
            self.prefill.popleft()
            frac = min(1.0, used / capacity)
            req.first = t0 + frac * span
            self.ttfts.append(req.first - req.arrival)
            if req.output <= 1:
                self._finish(req, req.first, finished)
                continue
            req.d0 = start + frac * steps
            self.sum_prompt_dec += req.prompt
            self.sum_d0 += req.d0
            heapq.heappush(self.decoding, (req.d0 + req.output - 1, next(_seq), req))
