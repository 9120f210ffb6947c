"""Discrete-event replay of a trace against simulated replicas, on a virtual clock.

Each replica is a `SimReplica` (continuous batching over a block KV cache, built by the
caller — `modelyard bench route` wraps the simulator's `Scheduler`). Two kinds of event:

- arrival of request k at `timestamp / speedup`: the policy chooses a replica from every
  replica's current load, the request joins that replica's queue (`on_routed` first);
- end of a replica's step: what the step did is delivered — admissions (cached tokens),
  first tokens (TTFT), finished requests (`on_completed`), and its KV events as one
  `KVEventBatch` (seq +1 per batch) — then, if it has work, its next step starts.

Ties go to step ends (so a replica's state is current when an arrival is placed). Nothing
depends on wall time or on iteration order of unordered containers, so a replay is a pure
function of (trace, policy, replicas, seed): deterministic. Only the policy's own CPU time
is measured (decision latency, per request).

Each record also keeps the cached prefix on the chosen replica and on the best replica at
arrival, so the report can split the hits a policy missed into those placement lost (the
prefix was cached elsewhere) and those capacity lost (cached nowhere any more).

Replica load reported to the policy (as replicas would in their stats):
`queued_prefill_tokens` = for each routed request without its first token, prompt tokens
minus its cached prefix (looked up in the replica's cache when it joined the queue, and
corrected when it is admitted); running, waiting and KV usage from the scheduler.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.policies import Policy
from bench.trace import TraceRequest
from cluster.engine import KVEvent, KVEventBatch
from cluster.routing import ReplicaLoad, RouteRequest


@dataclass(frozen=True, slots=True)
class StepReport:
    duration_s: float
    admitted: Sequence[tuple[str, int, bool]]  # (seq id, cached tokens, resumed)
    emitted: Sequence[str]  # sequences that produced a token in this step
    finished: Sequence[str]
    preempted: Sequence[str]
    events: Sequence[KVEvent]


class SimReplica(Protocol):
    """One simulated engine replica, stepped by the replay."""

    def submit(
        self, seq_id: str, prompt_tokens: int, output_tokens: int, block_hashes: Sequence[int]
    ) -> None: ...

    def cached_prefix_tokens(self, block_hashes: Sequence[int], prompt_tokens: int) -> int: ...

    def step(self) -> StepReport: ...

    @property
    def has_work(self) -> bool: ...

    @property
    def running(self) -> int: ...

    @property
    def waiting(self) -> int: ...

    @property
    def kv_usage(self) -> float: ...


ReplicaFactory = Callable[[str], SimReplica]


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...


@dataclass(slots=True)
class RequestRecord:
    request: TraceRequest
    replica: int
    arrival_s: float
    cached_tokens: int = -1  # at first admission; -1 until admitted
    # cached prefix (tokens) on the chosen replica and on the best one, when it arrived
    chosen_cached_at_arrival: int = 0
    best_cached_at_arrival: int = 0
    first_token_s: float = -1.0
    finished_s: float = -1.0


@dataclass(slots=True)
class PolicyRun:
    """Raw outcome of one policy's replay (summarised by `report`)."""

    policy: str
    replicas: int
    records: list[RequestRecord]
    prefill_tokens: list[int]
    decision_ns: list[int] = field(default_factory=list)
    bookkeeping_ns: int = 0
    preemptions: int = 0
    makespan_s: float = 0.0


class _Replay:
    def __init__(
        self,
        trace: Sequence[TraceRequest],
        policy: Policy,
        factory: ReplicaFactory,
        replicas: int,
        block_tokens: int,
        speedup: float,
        progress: Progress | None,
        prefix_caching: bool,
    ) -> None:
        self.trace = trace
        self.policy = policy
        self.ids = [f"replica-{i}" for i in range(replicas)]
        self.reps = [factory(rid) for rid in self.ids]
        self.block_tokens = block_tokens
        self.speedup = speedup
        self.progress = progress
        self.prefix_caching = prefix_caching
        self.backlog = [0] * replicas
        self.estimate: dict[str, int] = {}  # seq id -> tokens it adds to its backlog now
        self.records: dict[str, RequestRecord] = {}
        self.routes: dict[str, RouteRequest] = {}
        self.pending: dict[int, StepReport] = {}
        self.batch_seq = [0] * replicas
        self.steps: list[tuple[float, int]] = []
        self.run = PolicyRun(policy.name, replicas, [], [0] * replicas)

    def execute(self) -> PolicyRun:
        arrivals = self.trace
        k = 0
        now = 0.0
        while k < len(arrivals) or self.steps:
            t_arrival = arrivals[k].arrival_s / self.speedup if k < len(arrivals) else None
            if self.steps and (t_arrival is None or self.steps[0][0] <= t_arrival):
                now, r = heapq.heappop(self.steps)
                self._step_end(r, now)
            else:
                assert t_arrival is not None
                now = t_arrival
                self._arrive(arrivals[k], now)
                k += 1
        unfinished = [s for s, rec in self.records.items() if rec.finished_s < 0]
        if unfinished:
            raise RuntimeError(f"replay ended with {len(unfinished)} unfinished requests")
        self.run.records = sorted(self.records.values(), key=lambda rec: rec.request.index)
        self.run.makespan_s = now
        return self.run

    def _loads(self) -> list[ReplicaLoad]:
        return [
            ReplicaLoad(
                replica_id=rid,
                queued_prefill_tokens=self.backlog[i],
                running=rep.running,
                waiting=rep.waiting,
                kv_usage=rep.kv_usage,
            )
            for i, (rid, rep) in enumerate(zip(self.ids, self.reps, strict=True))
        ]

    def _arrive(self, req: TraceRequest, now: float) -> None:
        seq_id = f"req-{req.index}"
        blocks = req.full_blocks(self.block_tokens)
        route = RouteRequest(seq_id, blocks, req.input_length, prefix_caching=self.prefix_caching)
        loads = self._loads()
        t0 = time.perf_counter_ns()
        r = self.policy.choose(route, loads, now)
        t1 = time.perf_counter_ns()
        self.policy.on_routed(route, self.ids[r], now)
        t2 = time.perf_counter_ns()
        self.run.decision_ns.append(t1 - t0)
        self.run.bookkeeping_ns += t2 - t1
        cached = [rep.cached_prefix_tokens(blocks, req.input_length) for rep in self.reps]
        estimate = req.input_length - cached[r]
        self.estimate[seq_id] = estimate
        self.backlog[r] += estimate
        self.records[seq_id] = RequestRecord(req, r, now, -1, cached[r], max(cached))
        rep = self.reps[r]
        self.routes[seq_id] = route
        rep.submit(seq_id, req.input_length, req.output_length, blocks)
        if r not in self.pending:
            self._start_step(r, now)

    def _start_step(self, r: int, now: float) -> None:
        report = self.reps[r].step()
        self.pending[r] = report
        heapq.heappush(self.steps, (now + report.duration_s, r))

    def _step_end(self, r: int, now: float) -> None:
        report = self.pending.pop(r)
        for seq_id, cached, resumed in report.admitted:
            rec = self.records[seq_id]
            if not resumed and rec.cached_tokens < 0:
                rec.cached_tokens = cached
                self.run.prefill_tokens[r] += rec.request.input_length - cached
            if seq_id in self.estimate:
                actual = max(0, rec.request.input_length - cached)
                self.backlog[r] += actual - self.estimate[seq_id]
                self.estimate[seq_id] = actual
        for seq_id in report.emitted:
            rec = self.records[seq_id]
            if rec.first_token_s < 0:
                rec.first_token_s = now
                self.backlog[r] -= self.estimate.pop(seq_id, 0)
        self.run.preemptions += len(report.preempted)
        t0 = time.perf_counter_ns()
        if report.events:
            batch = KVEventBatch(
                replica_id=self.ids[r],
                seq=self.batch_seq[r],
                timestamp=now,
                events=list(report.events),
            )
            self.batch_seq[r] += 1
            self.policy.on_kv_events(batch, now)
        for seq_id in report.finished:
            self.records[seq_id].finished_s = now
            self.policy.on_completed(self.routes.pop(seq_id), self.ids[r], now)
            if self.progress is not None:
                self.progress.update(1)
        self.run.bookkeeping_ns += time.perf_counter_ns() - t0
        if self.reps[r].has_work and (report.duration_s > 0 or report.admitted):
            self._start_step(r, now)


def replay(
    trace: Sequence[TraceRequest],
    policy: Policy,
    factory: ReplicaFactory,
    *,
    replicas: int,
    block_tokens: int,
    speedup: float = 1.0,
    progress: Progress | None = None,
    prefix_caching: bool = True,
) -> PolicyRun:
    """Replay `trace` with `policy` over `replicas` fresh replicas from `factory`.

    `prefix_caching`: whether the simulated model caches prefixes (requests of a model that
    does not are marked so, and modelyard's router places them by load alone).
    """
    if replicas < 1:
        raise ValueError("replicas must be >= 1")
    if speedup <= 0:
        raise ValueError("speedup must be > 0")
    return _Replay(
        trace, policy, factory, replicas, block_tokens, speedup, progress, prefix_caching
    ).execute()
