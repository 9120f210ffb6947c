"""`ModelBackend` over Ray Serve deployment handles: how the gateway reaches model replicas.

Errors are translated here, once, on the caller's side of the Ray edge:
- a chunk carrying `error` (a typed `ModelyardError` raised by the engine on the replica)
  is re-raised as that same type via `ErrorInfo.raise_()`;
- Ray's own failures — the replica died or is unreachable, no replica is running — become
  `EngineUnavailable` (HTTP 503, gRPC UNAVAILABLE);
- Serve's `BackPressureError` (every replica holds `max_ongoing_requests` and this gateway
  replica already queues the model's `max_queued_requests`) becomes `Overloaded` with the
  model's `retry_after_s` (HTTP 503 + `Retry-After`, gRPC UNAVAILABLE + pushback), at
  once and without a retry: the refusal is the back-pressure.

Chunks come over `ModelReplica.generate_batches`: each item is a list of the chunks that
were ready together, so a fast engine's stream crosses the hop in a few messages instead
of one per token. Closing the stream early (the HTTP client disconnected) cancels the
handle call, which cancels the replica's generation, which aborts the engine request.

Failover: a request whose replica fails before the first chunk reached the caller — the
replica died or became unreachable (Ray's actor/worker/node errors), or its engine
answered `EngineUnavailable` (shutting down) — is sent again, up to `failover_attempts`
tries in all; Serve's router has meanwhile dropped a dead replica, so the retry lands on
another one. Once a chunk was yielded the client may have seen output, so a failure ends
the stream with `EngineUnavailable` (an SSE `error` event / gRPC UNAVAILABLE): Ray fails a
dead actor's stream promptly, so it never hangs.

`routing()` returns each model's request-router snapshot (`deployments.routing.introspect`)
for the gateway's debug endpoint; `fleet()` every replica's load and each model's replica
counts for its /metrics (`deployments.fleet`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from cluster.config.settings import ServedModel
from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import EngineUnavailable, ModelNotFound, ModelyardError, Overloaded
from cluster.gateway.telemetry.exposition import merge_expositions
from deployments.call_ids import own_call_id
from deployments.fleet import FleetReader
from deployments.replica_methods import GENERATE_BATCHES
from deployments.routing.introspect import snapshot_of

logger = logging.getLogger("ray.serve")

#: Seconds a health probe may take per model before the model counts as unhealthy.
HEALTH_TIMEOUT_S = 5.0
#: Tries per request when replicas fail before the first chunk (config: placement).
DEFAULT_FAILOVER_ATTEMPTS = 3


def _ray_failures() -> tuple[type[BaseException], ...]:
    """Ray exception types that mean "the replica cannot serve this now"."""
    from ray import exceptions as ray_exc
    from ray.serve import exceptions as serve_exc

    return (
        ray_exc.RayActorError,  # ActorDiedError, ActorUnavailableError
        ray_exc.WorkerCrashedError,
        ray_exc.NodeDiedError,
        ray_exc.ObjectLostError,
        ray_exc.ActorUnschedulableError,
        serve_exc.BackPressureError,
        serve_exc.DeploymentUnavailableError,
        serve_exc.ReplicaUnavailableError,
    )


def _replica_lost() -> tuple[type[BaseException], ...]:
    """Failures of one replica, after which another replica may well succeed."""
    from ray import exceptions as ray_exc
    from ray.serve import exceptions as serve_exc

    return (
        ray_exc.RayActorError,
        ray_exc.WorkerCrashedError,
        ray_exc.NodeDiedError,
        ray_exc.ObjectLostError,
        serve_exc.ReplicaUnavailableError,
    )


class HandleBackend:
    """Streams `EngineRequest`s to the model deployments through their handles.

    `handles` maps a served model's public id to the `DeploymentHandle` of its deployment.
    """

    def __init__(
        self,
        handles: Mapping[str, Any],
        *,
        failover_attempts: int = DEFAULT_FAILOVER_ATTEMPTS,
        scales_to_zero: frozenset[str] = frozenset(),
    ) -> None:
        if failover_attempts < 1:
            raise ValueError("failover_attempts must be at least 1")
        self._attempts = failover_attempts
        self._scales_to_zero = scales_to_zero
        self._replica_lost = _replica_lost()
        self._handles = dict(handles)
        self._stream_handles = {
            model_id: handle.options(stream=True) for model_id, handle in self._handles.items()
        }
        self._failures = _ray_failures()
        self.fleet = FleetReader(self._stream_handles)
        from ray.exceptions import RayError
        from ray.serve.exceptions import BackPressureError

        self._backpressure: type[BaseException] = BackPressureError

        self._other_ray_errors: tuple[type[BaseException], ...] = (RayError,)

    def _handle(self, model: ServedModel) -> Any:
        handle = self._stream_handles.get(model.id)
        if handle is None:
            raise ModelNotFound(f"model {model.id!r} is not deployed here", param="model")
        return handle

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncIterator[EngineChunk]:
        handle = self._handle(model)
        attempt = 1
        while True:
            started = False
            try:
                attempt_chunks = self._attempt(model, handle, request, attempt)
                async with aclosing(attempt_chunks) as chunks:
                    async for chunk in chunks:
                        started = True
                        yield chunk
                return
            except _NotStarted as failed:
                if started or attempt >= self._attempts:
                    raise failed.error from None
                logger.warning(
                    "request %s to %s failed before its first chunk (%s); retrying (%d/%d)",
                    request.request_id,
                    model.id,
                    failed.error.message,
                    attempt + 1,
                    self._attempts,
                )
                attempt += 1

    async def _attempt(
        self, model: ServedModel, handle: Any, request: EngineRequest, attempt: int
    ) -> AsyncGenerator[EngineChunk, None]:
        """One try. Raises `_NotStarted` for a replica failure before the first chunk.

        Each try is its own Serve call id (`deployments.call_ids`): the choices of one
        request run concurrently and must not share the request's id.
        """
        with own_call_id(f"{request.request_id}/{attempt}"):
            response = getattr(handle, GENERATE_BATCHES).remote(request)
        done = False
        started = False
        try:
            async for batch in response:
                for chunk in _chunks(batch):
                    if chunk.error is not None:
                        done = True
                        error = chunk.error.to_exception()
                        if not started and isinstance(error, EngineUnavailable):
                            raise _NotStarted(error)
                        raise error
                    started = True
                    yield chunk
            done = True
        except (ModelyardError, _NotStarted):
            raise
        except self._replica_lost as err:
            done = True
            lost = EngineUnavailable(f"model {model.id!r} is unavailable: {type(err).__name__}")
            if not started:
                raise _NotStarted(lost) from None
            raise lost from None
        except self._backpressure:
            done = True
            raise Overloaded(
                f"model {model.id!r} is at capacity: every replica is busy and the queue "
                "is full; retry later",
                retry_after_s=model.deployment.retry_after_s,
            ) from None
        except self._failures as err:
            done = True
            raise EngineUnavailable(
                f"model {model.id!r} is unavailable: {type(err).__name__}"
            ) from None
        except self._other_ray_errors as err:
            done = True
            raise ModelyardError(f"model {model.id!r} failed: {type(err).__name__}") from None
        finally:
            if not done:
                response.cancel()

    async def routing(self, *, include_index: bool = False) -> dict[str, Any]:
        """Model id -> its request router's snapshot in this process (None if not built)."""
        out: dict[str, Any] = {}
        for model_id, handle in self._stream_handles.items():
            try:
                out[model_id] = await snapshot_of(handle, include_index=include_index)
            except TimeoutError:
                out[model_id] = None
        return out

    async def health(self) -> dict[str, bool]:
        """Model id -> whether one of its replicas answers a health probe in time.

        A model that may scale to zero and has no replica now counts as healthy without a
        probe: the probe would wait at the handle, Serve would count it as demand, and a
        load balancer's or monitor's health checks would keep the model awake for ever.
        Its first request wakes it up (and waits for it) as any request does.
        """
        serving = self.fleet.serving()
        idle = {m for m in self._handles if m in self._scales_to_zero and m not in serving}
        ids = [m for m in self._handles if m not in idle]
        results = await asyncio.gather(*(self._probe(i) for i in ids))
        return dict(zip(ids, results, strict=True)) | dict.fromkeys(idle, True)

    async def engine_metrics(self) -> str:
        """Engine metrics (vLLM's `vllm:*`) of one replica per model, merged into one text.

        Each call reaches whichever replica Serve picks; samples carry a `replica` label.
        A model that does not answer in time contributes nothing to this scrape. A model
        with no replica (scaled to zero) is not asked: the call would wait at the handle,
        and Serve counts a waiting call as demand, so every scrape would wake it up.
        """

        async def one(handle: Any) -> str:
            try:
                text = await asyncio.wait_for(
                    handle.engine_metrics.remote(), timeout=HEALTH_TIMEOUT_S
                )
            except TimeoutError:
                return ""
            except self._failures:
                return ""
            return str(text)

        serving = self.fleet.serving()
        texts = await asyncio.gather(*(one(h) for m, h in self._handles.items() if m in serving))
        return merge_expositions(texts)[0]

    async def _probe(self, model_id: str) -> bool:
        try:
            ok = await asyncio.wait_for(
                self._handles[model_id].health.remote(), timeout=HEALTH_TIMEOUT_S
            )
        except TimeoutError:
            return False
        except self._failures:
            return False
        return bool(ok)


class _NotStarted(Exception):
    """A try failed before its first chunk with an error another replica may not have."""

    def __init__(self, error: ModelyardError) -> None:
        super().__init__(error.message)
        self.error = error


def _chunks(batch: object) -> list[EngineChunk]:
    """One item of `ModelReplica.generate_batches`, checked."""
    if not isinstance(batch, list) or not all(isinstance(c, EngineChunk) for c in batch):
        raise ModelyardError(f"replica sent {type(batch).__name__}, not a list of EngineChunk")
    return batch
