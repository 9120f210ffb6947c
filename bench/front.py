"""modelyard's placement as a standalone HTTP front, for the live router comparison.

In the cluster, `cluster.routing.Router` runs inside Ray Serve. To measure it against
third-party routers on equal terms — the same `modelyard sim serve` replicas, the same
text, the same client — this module puts the very same `Router` (with the in-process
bench's `modelyard` settings, `bench.policies.routing_settings`) in a small HTTP
front that proxies to replica URLs. It is a benchmark harness, not a production path.

Per request (POST /v1/completions or /v1/chat/completions, and /api/v1/...):

    hashes, P = prompt_blocks(path, body)     tokenise as the replicas do, hash full blocks
    loads_j   = (backlog_j, running_j, waiting_j, kv_usage_j)
    decision  = router.select(RouteRequest(id, hashes, P), loads, now)
    router.on_routed(...); backlog_j += P - decision.matched_tokens
    proxy the body to replica j, streaming the answer back byte for byte;
    first body bytes: backlog_j -= that estimate; end: router.on_completed(...)

`backlog_j` (prompt tokens routed to j and not yet answered, cached tokens excluded) is
the front's own account, exact at decision time; running, waiting and KV usage are polled
from each replica's vLLM-style /metrics every `poll_s`. The prefix index is fed exactly by
each replica's KV events (ZMQ, vLLM frames, through `cluster.kv_events.EventFeed`: a SUB
socket per replica connects to the replica's PUB) and provisionally by the routing
decisions. `now` is simulated time:
wall seconds since start times the replicas' clock speedup, so the index's TTLs mean the
same as in the in-process replay.

A body the front cannot tokenise is placed by load alone; the replica validates it and
answers (the front never judges requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.simserve.metrics import KV_USAGE, RUNNING, WAITING
from cluster.engine import KVEventBatch
from cluster.kv_events.feed import EventFeed
from cluster.routing import ReplicaLoad, Router, RouteRequest

PromptBlocks = Callable[[str, bytes], tuple[list[int], int]]
PROXY_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class FrontReplica:
    replica_id: str
    url: str
    kv_events: str | None = None  # the replica's ZMQ PUB endpoint, tcp://127.0.0.1:P


@dataclass(slots=True)
class _Load:
    backlog: int = 0
    running: int = 0
    waiting: int = 0
    kv_usage: float = 0.0
    routed: int = 0
    healthy: bool = True


@dataclass(slots=True)
class FrontStats:
    decisions_ns: list[int] = field(default_factory=list)
    unparsed: int = 0
    retries: int = 0


def gauges_from_metrics(text: str) -> tuple[int, int, float]:
    """(running, waiting, kv usage) from a vLLM-style /metrics exposition."""
    values = {RUNNING: 0.0, WAITING: 0.0}
    usage = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in values:
                values[sample.name] += sample.value
            elif sample.name == KV_USAGE:
                usage = max(usage, sample.value)
    return round(values[RUNNING]), round(values[WAITING]), usage


class RoutingFront:
    """The Router over `replicas`; `forward()` places and proxies one request."""

    def __init__(
        self,
        replicas: Sequence[FrontReplica],
        router: Router,
        prompt_blocks: PromptBlocks,
        *,
        sim_speedup: float = 1.0,
        poll_s: float = 0.25,
        topic: str = "kv-events",
    ) -> None:
        if not replicas:
            raise ValueError("a front needs at least one replica")
        self.replicas = list(replicas)
        self.router = router
        self.prompt_blocks = prompt_blocks
        self.sim_speedup = sim_speedup
        self.poll_s = poll_s
        self.topic = topic
        self.loads = {r.replica_id: _Load() for r in self.replicas}
        self.stats = FrontStats()
        self._origin = time.monotonic()
        self._client: httpx.AsyncClient | None = None
        self._feed = EventFeed(self._on_kv_events, topic=topic, hwm=100_000)
        self._tasks: list[asyncio.Task[None]] = []

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.sim_speedup

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(PROXY_TIMEOUT_S, connect=120.0),
            limits=httpx.Limits(max_connections=1024, max_keepalive_connections=256),
        )
        self._feed.sync({r.replica_id: r.kv_events for r in self.replicas if r.kv_events})
        self._tasks.append(asyncio.create_task(self._poll()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
        await self._feed.close()

    def _on_kv_events(self, batch: KVEventBatch) -> None:
        self.router.on_kv_events(batch, self.now())

    async def _poll(self) -> None:
        assert self._client is not None
        client = self._client
        while True:
            for replica in self.replicas:
                load = self.loads[replica.replica_id]
                try:
                    response = await client.get(replica.url + "/metrics", timeout=5.0)
                    response.raise_for_status()
                except httpx.HTTPError:
                    load.healthy = False
                    continue
                load.healthy = True
                load.running, load.waiting, load.kv_usage = gauges_from_metrics(response.text)
            await asyncio.sleep(self.poll_s)

    # ---- placement -------------------------------------------------------------------

    def _replica_loads(self) -> list[ReplicaLoad]:
        return [
            ReplicaLoad(
                replica_id=r.replica_id,
                queued_prefill_tokens=self.loads[r.replica_id].backlog,
                running=self.loads[r.replica_id].running,
                waiting=self.loads[r.replica_id].waiting,
                kv_usage=self.loads[r.replica_id].kv_usage,
                healthy=self.loads[r.replica_id].healthy,
            )
            for r in self.replicas
        ]

    def place(self, path: str, body: bytes) -> tuple[FrontReplica, RouteRequest, int]:
        """Choose a replica; return it, the route request and the backlog it adds."""
        try:
            hashes, prompt_tokens = self.prompt_blocks(path, body)
        except Exception:  # the replica will judge the body; place it by load alone
            self.stats.unparsed += 1
            hashes, prompt_tokens = [], 1
        route = RouteRequest(uuid.uuid4().hex, hashes, prompt_tokens)
        now = self.now()
        t0 = time.perf_counter_ns()
        decision = self.router.select(route, self._replica_loads(), now)
        self.stats.decisions_ns.append(time.perf_counter_ns() - t0)
        self.router.on_routed(route, decision.replica_id, now)
        replica = next(r for r in self.replicas if r.replica_id == decision.replica_id)
        estimate = max(0, round(prompt_tokens - decision.matched_tokens))
        load = self.loads[replica.replica_id]
        load.backlog += estimate
        load.routed += 1
        return replica, route, estimate

    async def forward(
        self, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], AsyncIterator[bytes]]:
        """Place and send one request; (status, headers, body stream) of the answer."""
        assert self._client is not None
        replica, route, estimate = self.place(path, body)
        load = self.loads[replica.replica_id]
        try:
            response = await self._send(replica.url + path, body, headers)
        except httpx.HTTPError:
            load.backlog -= estimate
            self.router.on_completed(route, replica.replica_id, self.now())
            raise

        async def relay() -> AsyncIterator[bytes]:
            pending = estimate
            try:
                async for chunk in response.aiter_raw():
                    if pending:
                        load.backlog -= pending
                        pending = 0
                    yield chunk
            finally:
                load.backlog -= pending
                await response.aclose()
                self.router.on_completed(route, replica.replica_id, self.now())

        keep = ("content-type", "x-modelyard-engine")
        out_headers = {k: v for k, v in response.headers.items() if k.lower() in keep}
        return response.status_code, out_headers, relay()

    async def _send(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST, retrying once when the connection failed before any answer (a pooled
        connection the replica closed meanwhile): the replica never saw the request."""
        assert self._client is not None
        for attempt in range(2):
            request = self._client.build_request("POST", url, content=body, headers=headers)
            try:
                return await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                if attempt == 1:
                    raise
                self.stats.retries += 1
        raise AssertionError("unreachable")

    def summary(self) -> dict[str, object]:
        ns = sorted(self.stats.decisions_ns)

        def pct(q: float) -> float:
            return ns[min(len(ns) - 1, int(q * len(ns)))] / 1000.0 if ns else 0.0

        return {
            "routed": {rid: load.routed for rid, load in self.loads.items()},
            "decisions": len(ns),
            "decision_p50_us": pct(0.5),
            "decision_p99_us": pct(0.99),
            "kv_batches": sum(s.batches for s in self._feed.stats.values()),
            "kv_decode_errors": sum(s.decode_errors for s in self._feed.stats.values()),
            "unparsed": self.stats.unparsed,
            "retries": self.stats.retries,
        }
