"""Start (and stop) Ray, Ray Serve and the modelyard application for one cluster file.

Used by `modelyard up` and by the integration tests, so both exercise the same start path.
Ray and Serve are imported inside the methods. This module is part of the composition root
(loaded only by `up` and the tests), so it may import `deployments`; the rest of `cluster`
stays importable without Ray.

Local mode (`ray.address` is null): a fresh single-node Ray on 127.0.0.1 with the file's
`num_cpus` and `virtual_gpus` declared as GPUs (placement groups then schedule exactly as
on a GPU node), no dashboard, one HTTP proxy on the head node bound to the gateway's
host/port. Joining mode (`ray.address` set): connect, start Serve with the same HTTP
options, and leave the cluster running on stop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from cluster.cli.progress import ReadinessTracker, snapshot_from_status
from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.errors import EngineUnavailable
from deployments.app import APP_NAME, build_app  # composition root: loaded by `up`, tests

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class LocalCluster:
    """Owns what it started: `stop()` shuts down Serve, and Ray if it started Ray."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        progress: Progress = _quiet,
        object_store_bytes: int | None = None,
        poll_interval_s: float = 0.25,
        heartbeat_s: float = 5.0,
    ) -> None:
        self.config = config
        self.served: list[ServedModel] = config.served_models(load_builtin_catalog())
        self._progress = progress
        self._object_store_bytes = object_store_bytes
        self._poll_interval_s = poll_interval_s
        self._heartbeat_s = heartbeat_s
        self._started_ray = False
        self._connected = False
        self._started_serve = False
        self.ready_after: dict[str, float] = {}
        self.session_dir = ""

    @property
    def base_url(self) -> str:
        return f"http://{self.config.gateway.host}:{self.config.gateway.port}"

    def start(self, *, timeout_s: float = 300.0) -> dict[str, float]:
        """Start everything; return model id -> seconds until its deployment was ready.

        Raises `EngineUnavailable` if the application fails or is not ready in `timeout_s`
        (what was started is stopped first).
        """
        try:
            self._start_ray()
            self._start_serve()
            return self._deploy_and_wait(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start_ray(self) -> None:
        import ray

        settings = self.config.ray
        if ray.is_initialized():
            return
        if settings.address is None:
            self._progress("starting Ray (local, 127.0.0.1) ...")
            kwargs: dict[str, Any] = {
                # "local": never attach to another Ray instance found on this machine.
                "address": "local",
                "_node_ip_address": "127.0.0.1",
                "num_cpus": settings.num_cpus,
                "num_gpus": settings.virtual_gpus,
                "include_dashboard": False,
                "namespace": settings.namespace,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self._object_store_bytes is not None:
                kwargs["object_store_memory"] = self._object_store_bytes
            context = ray.init(**kwargs)
            self._started_ray = True
            info: dict[str, Any] = getattr(context, "address_info", {})
            self.session_dir = str(info.get("session_dir", ""))
            self._progress(f"Ray session (logs): {self.session_dir}")
        else:
            self._progress(f"connecting to Ray at {settings.address} ...")
            ray.init(address=settings.address, namespace=settings.namespace, log_to_driver=False)
            self._connected = True

    def _start_serve(self) -> None:
        from ray import serve

        gateway = self.config.gateway
        self._progress(f"starting Ray Serve (HTTP on {gateway.host}:{gateway.port}) ...")
        serve.start(
            http_options={
                "host": gateway.host,
                "port": gateway.port,
                "request_timeout_s": gateway.request_timeout_s,
            },
            proxy_location="HeadOnly" if self._started_ray else "EveryNode",
        )
        self._started_serve = True

    def _deploy_and_wait(self, timeout_s: float) -> dict[str, float]:
        from ray import serve

        application = build_app(self.config)
        names = {model.deployment_name: model.id for model in self.served}
        self._progress(f"deploying {len(names)} model(s) and the gateway ...")
        started_at = time.monotonic()
        serve.run_many(
            [serve.RunTarget(target=application, name=APP_NAME, route_prefix="/")],
            wait_for_ingress_deployment_creation=False,
            wait_for_applications_running=False,
        )
        tracker = ReadinessTracker([*names, "gateway"], started_at=started_at)
        deadline = started_at + timeout_s
        last_heartbeat = started_at
        while True:
            now = time.monotonic()
            for line in tracker.observe(snapshot_from_status(serve.status(), APP_NAME), now):
                self._progress(line)
            failure = tracker.failure()
            if failure is not None:
                raise EngineUnavailable(f"deployment failed: {failure}")
            if tracker.all_ready:
                break
            if now > deadline:
                raise EngineUnavailable(
                    f"not ready after {timeout_s:.0f}s; still waiting for "
                    + ", ".join(tracker.pending())
                )
            if now - last_heartbeat >= self._heartbeat_s:
                last_heartbeat = now
                self._progress(
                    f"  [{now - started_at:6.1f}s] waiting for {', '.join(tracker.pending())}"
                )
            time.sleep(self._poll_interval_s)
        self.ready_after = {
            names[name]: seconds for name, seconds in tracker.ready_after.items() if name in names
        }
        return self.ready_after

    def stop(self) -> None:
        """Undo what `start` did. Idempotent.

        Local mode: shut down Serve and the Ray instance started here. Joining mode: delete
        only our application and disconnect; the shared cluster and its Serve keep running.
        """
        import ray

        if self._started_serve and ray.is_initialized():
            from ray import serve

            self._started_serve = False
            if self._started_ray:
                serve.shutdown()  # type: ignore[no-untyped-call]
            else:
                serve.delete(APP_NAME)
        if self._started_ray or self._connected:
            self._started_ray = self._connected = False
            ray.shutdown()

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
