"""`ModelBackend` over Ray Serve deployment handles: how the gateway reaches model replicas.

Errors are translated here, once, on the caller's side of the Ray edge:
- a chunk carrying `error` (a typed `ModelyardError` raised by the engine on the replica)
  is re-raised as that same type via `ErrorInfo.raise_()`;
- Ray's own failures — the replica died or is unreachable, no replica is running, the
  deployment is back-pressured — become `EngineUnavailable` (HTTP 503, gRPC UNAVAILABLE).

Closing the stream early (the HTTP client disconnected) cancels the handle call, which
cancels `ModelReplica.generate` on the replica, which aborts the engine request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from cluster.config.settings import ServedModel
from cluster.engine import EngineChunk, EngineRequest
from cluster.errors import EngineUnavailable, ModelNotFound, ModelyardError
from cluster.telemetry.exposition import merge_expositions

#: Seconds a health probe may take per model before the model counts as unhealthy.
HEALTH_TIMEOUT_S = 5.0


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


class HandleBackend:
    """Streams `EngineRequest`s to the model deployments through their handles.

    `handles` maps a served model's public id to the `DeploymentHandle` of its deployment.
    """

    def __init__(self, handles: Mapping[str, Any]) -> None:
        self._handles = dict(handles)
        self._stream_handles = {
            model_id: handle.options(stream=True) for model_id, handle in self._handles.items()
        }
        self._failures = _ray_failures()
        from ray.exceptions import RayError

        self._other_ray_errors: tuple[type[BaseException], ...] = (RayError,)

    def _handle(self, model: ServedModel) -> Any:
        handle = self._stream_handles.get(model.id)
        if handle is None:
            raise ModelNotFound(f"model {model.id!r} is not deployed here", param="model")
        return handle

    async def generate(
        self, model: ServedModel, request: EngineRequest
    ) -> AsyncIterator[EngineChunk]:
        response = self._handle(model).generate.remote(request)
        done = False
        try:
            async for chunk in response:
                if not isinstance(chunk, EngineChunk):
                    raise ModelyardError(f"replica sent {type(chunk).__name__}, not EngineChunk")
                if chunk.error is not None:
                    done = True
                    chunk.error.raise_()
                yield chunk
            done = True
        except ModelyardError:
            raise
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

    async def health(self) -> dict[str, bool]:
        """Model id -> whether one of its replicas answers a health probe in time."""
        ids = list(self._handles)
        results = await asyncio.gather(*(self._probe(i) for i in ids))
        return dict(zip(ids, results, strict=True))

    async def engine_metrics(self) -> str:
        """Engine metrics (vLLM's `vllm:*`) of one replica per model, merged into one text.

        Each call reaches whichever replica Serve picks; samples carry a `replica` label.
        A model that does not answer in time contributes nothing to this scrape.
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

        texts = await asyncio.gather(*(one(h) for h in self._handles.values()))
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
