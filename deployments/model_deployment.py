"""One Ray Serve deployment per served model; each replica hosts one engine.

This is the edge where errors cross Ray: an engine raises typed `ModelyardError`s, and the
replica turns them into a final `EngineChunk(error=err.info())` so that the caller
(`deployments.handle_backend.HandleBackend`) can re-raise the same type on its side. A Ray
traceback never reaches a client.

Replica methods (called through a `DeploymentHandle`):
- `generate(request)` — async generator of `EngineChunk`s; the first carries `replica_id`.
  If the caller goes away (client disconnect → handle cancelled) the engine request is
  aborted so its KV blocks and batch slot are freed.
- `generate_batches(request)` — the same stream, each item a list of the chunks that were
  ready together (what the gateway calls: see the method).
- `stats()` — `EngineStats`; `health()` — bool; `describe()` — id, engine, replica.
- `engine_metrics()` — the engine's own Prometheus metrics (vLLM's `vllm:*`), or ''.
- `check_health()` — Ray Serve's periodic health check (`models[].health`): raises when the
  engine reports itself broken. When the progress watchdog (`deployments.watchdog`) sees
  requests in flight but no output for `stall_after_s`, the replica logs it and ends its
  own process at once (`os._exit`, what Serve's force-stop of an unhealthy replica does,
  without waiting for three failed checks): Ray fails every open call on it (the gateway
  retries those not started on another replica, started ones end with an error event),
  request routers drop it as a dead actor instead of sending new requests into the stalled
  engine, and Serve starts a replacement. A stalled engine cannot be trusted to shut down
  (its loop is stuck), so none is attempted.
- `record_routing_stats()` — queue and KV numbers Ray Serve hands to request routers,
  `recent_ttft_s`, and `kv_events`: the endpoint of this replica's KV event publisher.
  The gateway exports them for every replica (`deployments.fleet`).
- `record_autoscaling_stats()` — the autoscaler's signals (`cluster.engine.signals`:
  running, waiting, KV usage, recent TTFT, prompt tokens per second), which Serve hands to
  the model's autoscaling policy (`autoscaler.serve_adapter`) as `ctx.aggregated_metrics`.

KV events: with `publish_kv_events`, a replica of a model with prefix caching republishes
its engine's `kv_events()` on a ZMQ PUB socket in vLLM's frame format
(`cluster.kv_events.publisher`), bound on this node's IP with an ephemeral port
(127.0.0.1 on a local cluster); every request router subscribes to it
(`deployments.routing.request_router`) and can ask the replica's snapshot socket for its
whole cache (`cluster.kv_events.republish`). A model's `kv_event_faults` (tests only)
damages the batches this replica sends (`cluster.kv_events.faults`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NoReturn

from cluster.config.settings import RoutingConfig, ServedModel
from cluster.engine import Engine, EngineChunk, EngineRequest, EngineStats
from cluster.errors import EngineUnavailable, ModelyardError
from cluster.gateway.service import internal_error
from cluster.kv_events.republish import Republisher
from cluster.placement import PlacementPlan, layout_violations, rank_bundles
from deployments.autoscaling_signals import ReplicaSignals
from deployments.engines.factory import build_engine
from deployments.placement import replica_options
from deployments.watchdog import ProgressWatchdog

if TYPE_CHECKING:
    from ray.serve import Application

logger = logging.getLogger("ray.serve")


def current_replica_id() -> str:
    """This replica's full Serve id (`app#deployment#unique`), as routers see it."""
    from ray import serve

    context = serve.get_replica_context()
    return str(context.replica_id.to_full_id_str())


def node_ip_address() -> str:
    """The IP Ray knows this replica's node by (127.0.0.1 on a local cluster).

    `ray.util.get_node_ip_address()` would answer the default route's address inside a
    worker; the node table has the address the node was started with.
    """
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():  # type: ignore[no-untyped-call]
        if node.get("NodeID") == node_id:
            return str(node["NodeManagerAddress"])
    raise EngineUnavailable(f"node {node_id} is not in Ray's node table")


class ModelReplica:
    """The user class of a model deployment (wrapped by `serve.deployment` in `bind_model`)."""

    # Ray Serve awaits an async constructor: the replica is ready once its engine started.
    async def __init__(  # type: ignore[misc]
        self, model: ServedModel, plan: PlacementPlan, publish_kv_events: bool = True
    ) -> None:
        self._model = model
        self._plan = plan
        self._replica_id = current_replica_id()
        # GPU bundle indices in rank order (grouped by node); for engines that start workers.
        self.rank_bundles: list[int] = self._check_layout()
        self._engine: Engine = build_engine(
            model, replica_id=self._replica_id, ray_bundle_indices=self.rank_bundles or None
        )
        await self._engine.start()
        self._signals = ReplicaSignals()
        self._watchdog = ProgressWatchdog(model.deployment.health.stall_after_s)
        self._exit: Callable[[int], NoReturn] = os._exit  # a stalled replica ends itself
        self._closed = False
        self._publisher: Republisher | None = None
        if publish_kv_events and model.spec.prefix_caching:
            self._start_publisher()
        logger.info(
            "replica %s of %s ready (engine=%s, gpus=%d)",
            self._replica_id,
            model.id,
            self._engine.name,
            plan.gpus,
        )

    def _start_publisher(self) -> None:
        """Republish the engine's KV events (subscribed before any request can arrive)."""
        self._publisher = Republisher(
            host=node_ip_address(), faults=self._model.deployment.kv_event_faults
        )
        self._publisher.start(self._engine.kv_events())

    def _check_layout(self) -> list[int]:
        """Rank order of this replica's GPU bundles; logs (does not fail) a bad placement."""
        if self._plan.gpus == 0:
            return []
        import ray.util

        group = ray.util.get_current_placement_group()
        if group is None:
            logger.warning("replica %s runs outside a placement group", self._replica_id)
            return self._plan.gpu_bundles
        row = ray.util.placement_group_table(group)
        nodes = row.get("bundles_to_node_id", {})
        placed = [str(nodes.get(i, "")) for i in range(len(self._plan.bundles))]
        for problem in layout_violations(self._plan, placed):
            logger.warning("replica %s placement: %s", self._replica_id, problem)
        return rank_bundles(self._plan, placed)

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Stream one generation; errors become a final chunk carrying `ErrorInfo`."""
        first = True
        finished = False
        started = time.monotonic()
        self._watchdog.began()
        try:
            async for chunk in self._engine.generate(request):
                self._watchdog.progressed()
                if first:
                    chunk = chunk.model_copy(update={"replica_id": self._replica_id})
                    first = False
                    self._signals.first_token(time.monotonic() - started)
                if chunk.usage is not None:
                    self._signals.finished(chunk.usage.prompt_tokens)
                yield chunk
            finished = True
        except ModelyardError as err:
            finished = True
            yield EngineChunk(error=err.info(), replica_id=self._replica_id if first else None)
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception:  # an engine bug: logged here with its traceback, never echoed
            finished = True
            logger.exception("engine failed on request %s", request.request_id)
            info = internal_error().info()
            yield EngineChunk(error=info, replica_id=self._replica_id if first else None)
        finally:
            self._watchdog.ended(progressed=finished)  # a cancellation is no progress
            if not finished:
                # Cancelled by the caller (or the stream was closed early): free the slot.
                await asyncio.shield(self._abort(request.request_id))

    async def generate_batches(self, request: EngineRequest) -> AsyncIterator[list[EngineChunk]]:
        """`generate`, with every chunk that is ready when the last send finished sent as
        one list.

        Each item of a streamed handle call is its own message across the hop (about a
        millisecond each on a small host), while an engine may produce several chunks
        between two sends (a fast decode, a loaded caller, the closing usage chunk). A
        pump task feeds a queue; each send takes what is there, at least one chunk, so
        a chunk is never held back waiting for company. Closing this stream cancels the
        pump, whose `generate` then aborts the engine request as above.
        """
        ready: asyncio.Queue[EngineChunk | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for chunk in self.generate(request):
                    ready.put_nowait(chunk)
            finally:
                ready.put_nowait(None)

        task = asyncio.create_task(pump())
        try:
            ended = False
            while not ended:
                batch: list[EngineChunk] = []
                item = await ready.get()
                while True:
                    if item is None:
                        ended = True
                        break
                    batch.append(item)
                    if ready.empty():
                        break
                    item = ready.get_nowait()
                if batch:
                    yield batch
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _retire_stalled(self, quiet_s: float) -> NoReturn:
        """End this replica's process (see the module docstring: `check_health`)."""
        logger.error(
            "replica %s: its engine made no progress for %.1fs with %d requests in flight "
            "(models[].health.stall_after_s %.1f); exiting so that Serve replaces it",
            self._replica_id,
            quiet_s,
            self._watchdog.in_flight,
            self._watchdog.stall_after_s,
        )
        for handler in logging.getLogger().handlers + logger.handlers:
            handler.flush()
        self._exit(1)

    async def _abort(self, request_id: str) -> None:
        try:
            await self._engine.abort(request_id)
        except Exception:
            logger.exception("abort of %s failed", request_id)

    async def stats(self) -> EngineStats:
        return self._engine.stats()

    async def engine_metrics(self) -> str:
        """The engine's own Prometheus text (vLLM's `vllm:*`); '' for engines without one."""
        metrics_text = getattr(self._engine, "metrics_text", None)
        return str(metrics_text()) if callable(metrics_text) else ""

    async def describe(self) -> dict[str, Any]:
        return {
            "model": self._model.id,
            "engine": self._engine.name,
            "simulated": self._engine.simulated,
            "replica_id": self._replica_id,
            "gpus": self._plan.gpus,
            "rank_bundles": self.rank_bundles,
        }

    async def health(self) -> bool:
        try:
            await self._engine.check_health()
        except ModelyardError:
            return False
        return True

    async def check_health(self) -> None:
        """Ray Serve's health check: an exception marks the replica unhealthy (restarted)."""
        if self._closed:
            raise EngineUnavailable(f"replica {self._replica_id} is shutting down")
        quiet_s = self._watchdog.check()
        if quiet_s is not None:
            self._retire_stalled(quiet_s)
        await self._engine.check_health()

    async def record_routing_stats(self) -> dict[str, Any]:
        """Per-replica numbers for request routers (`RunningReplica.routing_stats`).

        Async so it runs on the replica's event loop, like the engine it reads.
        """
        stats = self._engine.stats()
        return {
            "running": stats.running,
            "waiting": stats.waiting,
            "queue_len": stats.running + stats.waiting,
            "kv_usage": stats.kv_usage,
            "kv_blocks_total": stats.kv_blocks_total,
            "block_size": stats.block_size,
            "prefix_cache_queries": stats.prefix_cache_queries,
            "prefix_cache_hits": stats.prefix_cache_hits,
            "prefix_caching": self._model.spec.prefix_caching,
            "recent_ttft_s": self._signals.recent_ttft_s(),
            "kv_events": None,
            **(self._publisher.routing_stats() if self._publisher is not None else {}),
        }

    async def record_autoscaling_stats(self) -> dict[str, float]:
        """The autoscaler's signals (`cluster.engine.signals`), pushed by Serve every
        `metrics_interval_s` to the controller, where the policy reads them."""
        return self._signals.report(self._engine.stats())

    async def __del__(self) -> None:
        """Called by Ray Serve when the replica stops: release the engine."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        await self._engine.shutdown()
        if self._publisher is not None:
            self._publisher.close()


def bind_model(
    model: ServedModel, plan: PlacementPlan, routing: RoutingConfig | None = None
) -> Application:
    """A bound Serve application node for `model`'s deployment (one per catalog model),
    routed by the request router with `routing` (the cluster file's section)."""
    from ray import serve

    routing = routing or RoutingConfig()
    deployment = serve.deployment(**replica_options(model, plan, routing))(ModelReplica)
    return deployment.bind(model, plan, routing.kv_events)
