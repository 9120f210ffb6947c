"""The discrete-time replay: arrivals -> gateway queue -> simulated replicas, with one
autoscaling policy resizing the fleet.

The gateway counts the prompt tokens arriving per second over the last `rate_window_s`
(a signal modelyard's policy uses; the baselines ignore it). Every `dt` seconds:
replicas whose start-up is over become ready; the tick's arrivals join the gateway's
queue; requests that waited past `timeout_s` without a first token give up (timed out);
the gateway hands queued requests, oldest first, to a ready replica holding fewer than
`max_ongoing` (Serve's `max_ongoing_requests`) — by default the one with the smallest
prefill backlog (prompt tokens routed to it and not yet prefilled; ties: fewest ongoing),
which is how modelyard's router ranks replicas when no prefix is cached
(`cluster/routing/scorers/queue.py`), or with `dispatch="fewest-ongoing"` the one with
the fewest ongoing requests (join the shortest queue by count, as Serve's default
router approximates with two random choices); replicas
advance (`bench.autoscale.fleet`); draining replicas with nothing left stop. Every
`policy.period_s` the policy sees an `Observation` and answers the replicas it wants
(ready + starting):

- more: new replicas are launched and become ready `startup_s` later;
- fewer: replicas still starting are cancelled first (newest first), then the ready
  replica with the fewest ongoing requests drains: it takes no new requests, hands its
  waiting ones back to the gateway and stops once its running ones finish.

A replica costs from launch until it stops (replica-hours). The first `warmup_s` are a
warm-up: every policy runs and every request is served, but neither the requests that
arrive then nor the replica time before it are counted (every policy starts from the
same fleet, sized for the first minutes' load; the warm-up keeps that guess out of the
comparison). A request meets the SLO
when TTFT <= `ttft_slo_s` and its time per output token (last - first token over
output - 1) <= `tpot_slo_s`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from bench.autoscale.arrivals import Arrival
from bench.autoscale.fleet import Replica, ReplicaShape, Request
from bench.autoscale.observation import Observation, ReplicaLoad, ScalingPolicy

#: How the gateway picks a replica for a queued request (`--dispatch`).
Dispatch = Literal["prefill-backlog", "fewest-ongoing"]
DISPATCH_RULES: tuple[Dispatch, ...] = get_args(Dispatch)


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    dt: float = 0.5
    startup_s: float = 180.0
    timeout_s: float = 60.0
    initial_replicas: int = 1
    max_ongoing: int = 512
    ttft_slo_s: float = 2.0
    tpot_slo_s: float = 0.05
    timeline_every_s: float = 10.0
    rate_window_s: float = 5.0
    warmup_s: float = 600.0
    dispatch: Dispatch = "prefill-backlog"


@dataclass(slots=True)
class ReplayResult:
    policy: str
    requests: list[Request]
    replica_seconds: float
    actions: list[tuple[float, int, int]]  # (time, from, to)
    timeline: list[tuple[float, int, int, int]] = field(default_factory=list)
    # (time, ready, capacity, ongoing)
    duration_s: float = 0.0


Progress = Callable[[float], None]


class _Fleet:
    def __init__(self, shape: ReplicaShape, cfg: ReplayConfig) -> None:
        self.shape = shape
        self.cfg = cfg
        self.replicas: list[Replica] = []
        self.replica_seconds = 0.0

    def launch(self, now: float, ready_now: bool = False) -> None:
        ready_at = now if ready_now else now + self.cfg.startup_s
        rep = Replica(self.shape, launched_at=now, ready_at=ready_at)
        if ready_now:
            rep.state = "ready"
        self.replicas.append(rep)

    def by_state(self, state: str) -> list[Replica]:
        return [r for r in self.replicas if r.state == state]

    def remove(self, now: float, count: int, pending: deque[Request]) -> None:
        starting = sorted(self.by_state("starting"), key=lambda r: -r.launched_at)
        for rep in starting[:count]:
            rep.state = "stopped"
            rep.stopped_at = now
        count -= min(count, len(starting))
        ready = sorted(self.by_state("ready"), key=lambda r: r.ongoing)
        for rep in ready[:count]:
            rep.state = "draining"
            pending.extendleft(reversed(rep.waiting))
            rep.waiting.clear()


def _observe(now: float, fleet: _Fleet, pending: deque[Request], prompt_rate: float) -> Observation:
    ready = tuple(
        ReplicaLoad(*r.vllm_counts(), r.kv_usage(), r.recent_ttft_s())
        for r in fleet.by_state("ready")
    )
    draining = sum(r.ongoing for r in fleet.by_state("draining"))
    return Observation(
        now=now,
        ready=ready,
        starting=len(fleet.by_state("starting")),
        gateway_pending=len(pending),
        draining_ongoing=draining,
        prompt_tokens_per_s=prompt_rate,
    )


def replay(
    arrivals: list[Arrival],
    policy: ScalingPolicy,
    shape: ReplicaShape,
    cfg: ReplayConfig,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay `arrivals` under `policy` (module docstring)."""
    requests = [
        Request(i, a.at_s, a.prompt_tokens, a.output_tokens) for i, a in enumerate(arrivals)
    ]
    fleet = _Fleet(shape, cfg)
    for _ in range(cfg.initial_replicas):
        fleet.launch(0.0, ready_now=True)
    pending: deque[Request] = deque()
    finished: list[Request] = []
    actions: list[tuple[float, int, int]] = []
    timeline: list[tuple[float, int, int, int]] = []
    last_arrival = arrivals[-1].at_s if arrivals else 0.0
    end = last_arrival + cfg.timeout_s + 600.0
    t, nxt, next_policy, next_sample, next_progress = 0.0, 0, 0.0, 0.0, 0.0
    outstanding = len(requests)
    rate: deque[tuple[float, int]] = deque()  # prompt tokens arrived, for the gateway's rate
    rate_sum = 0
    while t < end and (nxt < len(requests) or outstanding > 0):
        for rep in fleet.replicas:
            if rep.state == "starting" and rep.ready_at <= t:
                rep.state = "ready"
        while nxt < len(requests) and requests[nxt].arrival <= t:
            pending.append(requests[nxt])
            rate.append((t, requests[nxt].prompt))
            rate_sum += requests[nxt].prompt
            nxt += 1
        while rate and rate[0][0] <= t - cfg.rate_window_s:
            rate_sum -= rate.popleft()[1]
        outstanding -= _expire(t, cfg.timeout_s, pending, fleet.by_state("ready"))
        _dispatch(pending, fleet.by_state("ready"), cfg.max_ongoing, cfg.dispatch)
        live = 0
        for rep in fleet.replicas:
            if rep.state in ("ready", "draining"):
                rep.tick(t, cfg.dt, finished)
                if rep.state == "draining" and rep.ongoing == 0:
                    rep.state = "stopped"
                    rep.stopped_at = t + cfg.dt
            if rep.state != "stopped":
                live += 1
        outstanding -= len(finished)
        finished.clear()
        fleet.replicas = [r for r in fleet.replicas if r.state != "stopped"]
        if t >= cfg.warmup_s:
            fleet.replica_seconds += live * cfg.dt
        if t >= next_policy:
            obs = _observe(t, fleet, pending, rate_sum / cfg.rate_window_s)
            wanted = max(0, policy.desired(obs))
            if wanted != obs.capacity:
                actions.append((t, obs.capacity, wanted))
                if wanted > obs.capacity:
                    for _ in range(wanted - obs.capacity):
                        fleet.launch(t)
                else:
                    fleet.remove(t, obs.capacity - wanted, pending)
            next_policy = t + policy.period_s
        if t >= next_sample:
            obs = _observe(t, fleet, pending, rate_sum / cfg.rate_window_s)
            timeline.append((t, obs.ready_count, obs.capacity, obs.ongoing))
            next_sample = t + cfg.timeline_every_s
        if progress is not None and t >= next_progress:
            progress(min(1.0, t / max(last_arrival, 1.0)))
            next_progress = t + 60.0
        t += cfg.dt
    for req in requests:
        if req.done is None and not req.timed_out:
            req.timed_out = True
    return ReplayResult(policy.name, requests, fleet.replica_seconds, actions, timeline, t)


def _expire(now: float, timeout_s: float, pending: deque[Request], ready: list[Replica]) -> int:
    """Requests without a first token after `timeout_s` give up; returns how many.

    Queues are in arrival order (drained requests go back to the front, and they are the
    oldest), so a queue whose head is still young has nothing to expire.
    """
    cutoff = now - timeout_s
    gone = 0
    for queue in [pending, *(r.waiting for r in ready)]:
        if not queue or queue[0].arrival >= cutoff:
            continue
        kept = [q for q in queue if q.arrival >= cutoff]
        for q in queue:
            if q.arrival < cutoff:
                q.timed_out = True
        gone += len(queue) - len(kept)
        queue.clear()
        queue.extend(kept)
    return gone


def _dispatch(
    pending: deque[Request], ready: list[Replica], max_ongoing: int, dispatch: Dispatch
) -> None:
    """Hand queued requests, oldest first, to ready replicas with room (module docstring):
    by prefill backlog (`prefill-backlog`) or by ongoing requests (`fewest-ongoing`)."""
    if not pending or not ready:
        return
    by_backlog = dispatch == "prefill-backlog"
    heap = [
        (r.backlog_tokens() if by_backlog else 0, r.ongoing, i)
        for i, r in enumerate(ready)
        if r.ongoing < max_ongoing
    ]
    heapq.heapify(heap)
    while pending and heap:
        backlog, ongoing, i = heapq.heappop(heap)
        req = pending.popleft()
        ready[i].waiting.append(req)
        if ongoing + 1 < max_ongoing:
            added = req.prompt if by_backlog else 0
            heapq.heappush(heap, (backlog + added, ongoing + 1, i))
