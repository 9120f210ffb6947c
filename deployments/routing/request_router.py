"""`RoutingRequestRouter`: the Ray Serve request router of every model deployment.

Serve builds one instance per deployment in every process that holds a handle to it (each
gateway replica; a driver that calls a model directly), from `request_router_kwargs`
(`deployments.routing.config.RouterKwargs`), and calls it on that handle's router event
loop. It delegates every decision to `cluster.routing.Router`:

    choose_replicas(candidates, request)
        route   = RouteRequest from the request's EngineRequest (prompt length, chained
                  block hashes; `deployments.routing.prompts`), computed once per request;
                  tokenising with a vLLM model's tokenizer runs on a worker thread, the
                  loop awaits it (`deployments.routing.offload`)
        loads   = ReplicaLoad per candidate (`deployments.routing.loads`)
        ranked  = Router.rank(route, loads, now)
        return    [[best], [second], ...]    one replica per tier: Serve sends to the
                                             first tier whose replica has room, so a full
                                             replica falls back to the next best
    on_request_routed     Router.on_routed (provisional prefix entries), count in flight
    on_request_completed  Router.on_completed (refresh provisional entries), stop counting
    on_replica_actor_died / replica set shrinks
                          Router.remove_replica, unsubscribe its KV events

Calls that are not a generation (health, stats, metrics) get all candidates as one tier:
Serve's default, the shortest queue.

KV events: each model replica republishes its engine's events on a ZMQ PUB socket and
reports the endpoint in `record_routing_stats()` (`kv_events`). Whenever Serve hands the
router a new replica set (membership or stats changed), its `EventFeed` subscribes to
every listed endpoint and drops the rest; batches are applied with
`Router.on_kv_events` on this same loop (sequence gaps → the replica's exact entries are
demoted to provisional, `cluster.routing.sync`). Snapshots: each replica also reports a
snapshot endpoint (`kv_snapshot`, `cluster.kv_events.snapshot`); the router asks it for
the replica's whole cache when it first subscribes (blocks cached before are never sent
again), after a sequence gap, and after adopting a block size, and replaces that
replica's exact entries with it (`Router.on_kv_snapshot`); its batches meanwhile are
buffered and applied after the snapshot's `seq`. Every router reads the same events,
so every gateway replica holds the same exact index; only the provisional entries (each
router's own recent decisions) differ. Simulated and vLLM replicas are both subscribed:
for vLLM the router renders prompts with the model's own tokenizer
(`deployments.routing.vllm_tokens`, loaded on a background thread; proxy hashes until
then, or for good where it cannot load). Models without prefix caching (MiniMax-M1) are
not subscribed.

Block size of vLLM models: vLLM picks it per platform and model, and every replica
reports its engine's value (`block_size` in its routing stats). When the replicas agree
on a value other than the index's, the router adopts it: a new routing `Router` (the
index keyed at the old size could never match the engine's events) and hashers of that
size sharing the loaded tokenizer. This happens once, when the first replica reports.

`replica_stats` maps each current replica's name to its last `record_routing_stats()`
report. It is replaced whole (never mutated) on this router's loop, so the gateway reads
it from its own thread at scrape time (`deployments.fleet`); a replica that left is gone.

Hook exceptions are logged and swallowed: a routing bookkeeping bug must not fail the
request Serve is sending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from typing import Any

from ray.serve._private.common import ReplicaID
from ray.serve._private.replica_result import ReplicaResult
from ray.serve.request_router import PendingRequest, RequestRouter, RunningReplica

from cluster.engine import EngineRequest
from cluster.errors import ModelyardError
from cluster.kv_events.index_feed import IndexFeed
from cluster.routing import Decision, Router, RouteRequest
from deployments.replica_methods import GENERATE_METHODS
from deployments.routing.config import RouterKwargs, adopted_block_size
from deployments.routing.loads import LoadBook
from deployments.routing.offload import OffLoopHashing
from deployments.routing.prompts import PromptHasher, build_hasher
from deployments.routing.vllm_tokens import RendererLoader

logger = logging.getLogger("ray.serve")

#: Routed-request descriptions kept between `choose_replicas` and `on_request_routed`
#: (a request cancelled while waiting for a replica leaves its entry behind; the oldest go).
MAX_PENDING_ROUTES = 10_000
#: Decision times kept for `snapshot()` (our code's share of the gateway's overhead): wall
#: time, which includes waiting for the GIL and for the hashing worker, and this thread's
#: CPU time (less the time spent awaiting the worker).
LATENCY_SAMPLES = 10_000

#: A routed request between `choose_replicas` and `on_request_routed`: its description,
#: the ranking, and (with decision records on) each replica's exact cached-token
#: prediction at decision time.
_Routed = tuple[RouteRequest, list[Decision], dict[str, int]]


class RoutingRequestRouter(RequestRouter):
    # ---- construction (Serve calls __init__, then initialize_state(**kwargs)) --------

    def initialize_state(self, **kwargs: Any) -> None:
        config = RouterKwargs.model_validate(kwargs)
        self.config = config
        self.policy = Router(config.settings)
        self.renderer: RendererLoader | None = None
        if config.hashing == "vllm" and config.served is not None:
            self.renderer = RendererLoader(config.served)
        self.hasher: PromptHasher = self._hasher()
        self.hashing = OffLoopHashing()
        self.loads = LoadBook()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.feed: IndexFeed | None = None
        self.decision_ns: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self.decision_cpu_ns: deque[int] = deque(maxlen=LATENCY_SAMPLES)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=max(1, config.record_decisions))
        self._routes: OrderedDict[str, _Routed] = OrderedDict()
        self._names: dict[ReplicaID, str] = {}
        self.replica_stats: dict[str, dict[str, Any]] = {}

    def _hasher(self) -> PromptHasher:
        config = self.config
        kind = config.hashing if config.hashing != "vllm" or self.renderer else "proxy"
        return build_hasher(
            kind,
            block_tokens=config.block_tokens,
            prefix_caching=config.prefix_caching,
            loader=self.renderer,
        )

    def _adopt_block_size(self, replicas: list[RunningReplica]) -> None:
        """Index and hash in the block size the engines report (vLLM decides it)."""
        size = adopted_block_size(self.config, [r.routing_stats for r in replicas])
        if size is None:
            return
        self.config = self.config.with_block_tokens(size)
        self.policy = Router(self.config.settings)
        self.hasher = self._hasher()
        if self.feed is not None:  # the new index has none of the events seen so far
            for name in self.feed.feed.replicas:
                self.feed.resync(name)

    # ---- Serve's routing call ---------------------------------------------------------

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: PendingRequest | None = None,
    ) -> list[list[RunningReplica]]:
        self._bind_loop()
        if pending_request is None or not candidate_replicas:
            return [candidate_replicas]
        # After every tier was tried, Serve backs off before asking again (no busy loop).
        pending_request.routing_context.should_backoff = True
        started = time.perf_counter_ns()
        started_cpu = time.thread_time_ns()
        key = pending_request.metadata.internal_request_id
        found = self._routes.get(key)
        if found is not None:
            route: RouteRequest | None = found[0]
        else:
            awaited = time.thread_time_ns()
            route = await self._route_of(pending_request)
            # Other tasks ran on this thread while the worker tokenised: not our CPU.
            started_cpu += time.thread_time_ns() - awaited
        if route is None:
            return [candidate_replicas]
        cache = self.replica_queue_len_cache
        loads = [
            self.loads.load(
                self._name(r.replica_id),
                r.routing_stats,
                cache.get(r.replica_id),
                route.prompt_tokens,
            )
            for r in candidate_replicas
        ]
        now = time.monotonic()
        try:
            ranked = self.policy.rank(route, loads, now)
        except ModelyardError:
            return [candidate_replicas]
        # The exact prediction is read now, as the decision saw the index: Serve calls
        # `on_request_routed` after awaiting the replica's acceptance, by when this loop
        # may have applied the engine's `stored` events for the request's own blocks.
        exact = self.policy.exact_tokens(route, now) if self.config.record_decisions else {}
        self._routes[key] = (route, ranked, exact)
        self._routes.move_to_end(key)
        while len(self._routes) > MAX_PENDING_ROUTES:
            self._routes.popitem(last=False)
        by_name = {self._name(r.replica_id): r for r in candidate_replicas}
        tiers = [[by_name[d.replica_id]] for d in ranked]
        self.decision_ns.append(time.perf_counter_ns() - started)
        self.decision_cpu_ns.append(time.thread_time_ns() - started_cpu)
        return tiers

    async def _route_of(self, pending_request: PendingRequest) -> RouteRequest | None:
        if pending_request.metadata.call_method not in GENERATE_METHODS:
            return None
        request = _engine_request(pending_request)
        if request is None:
            return None
        try:
            hasher = self.hasher
            route = await self.hashing.route(hasher, request)
            if hasher is not self.hasher:  # the block size was adopted meanwhile
                route = await self.hashing.route(self.hasher, request)
            return route
        except Exception:  # the replica judges the request; place it by load alone
            return RouteRequest(request_id=request.request_id, block_hashes=(), prompt_tokens=1)

    def _name(self, replica_id: ReplicaID) -> str:
        name = self._names.get(replica_id)
        if name is None:
            name = replica_id.to_full_id_str()
            self._names[replica_id] = name
        return name

    # ---- lifecycle hooks --------------------------------------------------------------

    def on_request_routed(
        self, pending_request: PendingRequest, replica_id: ReplicaID, result: ReplicaResult
    ) -> None:
        try:
            self._routed(pending_request, self._name(replica_id))
        except Exception:
            logger.exception("routing bookkeeping failed for a routed request")

    def _routed(self, pending_request: PendingRequest, name: str) -> None:
        key = pending_request.metadata.internal_request_id
        found = self._routes.pop(key, None)
        if found is None:
            return
        route, ranked, exact = found
        decision = next((d for d in ranked if d.replica_id == name), None)
        matched = decision.matched_tokens if decision is not None else 0.0
        now = time.monotonic()
        if self.config.record_decisions:
            self._record(route, name, ranked, matched, exact.get(name, 0))
        self.policy.on_routed(route, name, now)
        self.loads.routed(key, name, route, round(route.prompt_tokens - matched))

    def _record(
        self, route: RouteRequest, name: str, ranked: list[Decision], matched: float, exact: int
    ) -> None:
        self.decisions.append(
            {
                "request_id": route.request_id,
                "replica_id": name,
                "prompt_tokens": route.prompt_tokens,
                "matched_tokens": matched,
                "exact_tokens": exact,
                "first_choice": ranked[0].replica_id if ranked else None,
                "ranked": [d.replica_id for d in ranked],
            }
        )

    def on_request_completed(self, replica_id: ReplicaID, internal_request_id: str) -> None:
        try:
            name = self._name(replica_id)
            done = self.loads.completed(internal_request_id, name)
            if done is not None:
                self.policy.on_completed(done.route, name, time.monotonic())
        except Exception:
            logger.exception("routing bookkeeping failed for a completed request")

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._forget(self._name(replica_id))

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        self._bind_loop()
        self._adopt_block_size(replicas)
        current = {r.replica_id for r in replicas}
        for gone in [rid for rid in self._names if rid not in current]:
            self._forget(self._names.pop(gone))
        endpoints: dict[str, str] = {}
        snapshots: dict[str, str] = {}
        for r in replicas:
            name = self._name(r.replica_id)
            endpoint = r.routing_stats.get("kv_events")
            if isinstance(endpoint, str) and endpoint:
                endpoints[name] = endpoint
            snapshot = r.routing_stats.get("kv_snapshot")
            if isinstance(snapshot, str) and snapshot:
                snapshots[name] = snapshot
        if self.feed is not None:
            self.feed.sync(endpoints, snapshots)
        self.replica_stats = {self._name(r.replica_id): r.routing_stats for r in replicas}

    def _forget(self, name: str) -> None:
        self.replica_stats = {k: v for k, v in self.replica_stats.items() if k != name}
        self.policy.remove_replica(name)
        self.loads.forget(name)
        if self.feed is not None:
            self.feed.forget(name)

    # ---- KV events --------------------------------------------------------------------

    def _bind_loop(self) -> None:
        if self.loop is not None:
            return
        self.loop = asyncio.get_running_loop()
        if self.config.kv_events:
            self.feed = IndexFeed(lambda: self.policy)

    async def close(self) -> None:
        """Stop every KV event subscription (tests; Serve has no router shutdown hook)."""
        if self.feed is not None:
            await self.feed.close()

    # ---- introspection ----------------------------------------------------------------

    def snapshot(self, *, include_index: bool = False) -> dict[str, Any]:
        """What this router knows (call on its loop; `deployments.routing.introspect`).

        `include_index` adds every exactly held block hash per replica (large).
        """
        now = time.monotonic()
        policy = self.policy
        exact = policy.index.exact_holdings()
        replicas: dict[str, Any] = {}
        for name in sorted(set(self._names.values())):
            count, tokens = self.loads.own(name)
            feed = self.feed.feed.stats.get(name) if self.feed is not None else None
            replicas[name] = {
                "in_flight": count,
                "in_flight_prefill_tokens": tokens,
                "exact_blocks": len(exact.get(name, ())),
                "kv_events": feed.endpoint if feed is not None else None,
                "kv_batches": feed.batches if feed is not None else 0,
                "kv_snapshot": feed.snapshot_endpoint if feed is not None else None,
                "snapshots": feed.snapshots if feed is not None else 0,
                "snapshot_failures": feed.snapshot_failures if feed is not None else 0,
                "kv_faults": self.replica_stats.get(name, {}).get("kv_faults"),
            }
        return {
            "model": self.config.model_id,
            "hashing": self.config.hashing,
            "exact_hashes": self.hasher.exact,
            "tokenizer": (
                {"state": self.renderer.state, "error": self.renderer.error}
                if self.renderer is not None
                else None
            ),
            "prefix_caching": self.config.prefix_caching,
            "kv_events": self.config.kv_events,
            "block_tokens": self.config.block_tokens,
            "index_blocks": len(policy.index),
            "kv_batches": self.feed.batches if self.feed is not None else 0,
            "lost_batches": policy.sequencer.lost_batches,
            "ignored_batches": policy.sequencer.ignored_batches,
            "snapshots": policy.snapshots,
            "skipped_events": policy.events.skipped_events,
            "replicas": replicas,
            "exact_index": (
                {name: sorted(hashes) for name, hashes in exact.items()} if include_index else None
            ),
            "decision_us": _percentiles(self.decision_ns),
            "decision_cpu_us": _percentiles(self.decision_cpu_ns),
            "decisions": list(self.decisions) if self.config.record_decisions else [],
            "monotonic": now,
        }


def _engine_request(pending_request: PendingRequest) -> EngineRequest | None:
    for value in (*pending_request.args, *pending_request.kwargs.values()):
        if isinstance(value, EngineRequest):
            return value
    return None


def _percentiles(samples: deque[int]) -> dict[str, float]:
    if not samples:
        return {"count": 0, "p50": 0.0, "p99": 0.0}
    ordered = sorted(samples)
    n = len(ordered)
    return {
        "count": n,
        "p50": ordered[n // 2] / 1000.0,
        "p99": ordered[min(n - 1, int(0.99 * n))] / 1000.0,
    }
