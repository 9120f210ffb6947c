"""Start (and stop) Ray, Ray Serve and the modelyard application for one cluster file.

Used by `modelyard up` and by the integration tests, so both exercise the same start path.
Ray and Serve are imported inside the methods. It lives beside the application it deploys;
the CLI (`cluster.cli.up`) imports it inside the command, so the rest of the CLI starts
without Ray.

Local mode (`ray.address` is null): a fresh single-node Ray on 127.0.0.1 with the file's
`num_cpus` and `virtual_gpus` declared as GPUs (placement groups then schedule exactly as
on a GPU node), no dashboard, Serve's HTTP proxy on the head node only. Ray starts with the
environment of `gateway.ingress` (`deployments.ingress`): with `direct` the gateway
replica itself listens on the gateway's host/port and the proxy gets a free port (it is
not in the request path); with `proxy` the proxy listens on the gateway's host/port.
Joining mode (`ray.address` set): connect, start Serve with the same HTTP options, and
leave the cluster running on stop; the ingress mode is then whatever environment that
cluster's nodes were started with (it must match `gateway.ingress`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from cluster.config.catalog import load_builtin_catalog
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.errors import ConfigError, EngineUnavailable
from cluster.gateway.tls import serve_http_tls
from deployments.app import APP_NAME, build_app
from deployments.ingress import find_app_port, ingress_ports, ray_environment, serve_environment
from deployments.progress import ReadinessTracker, snapshot_from_status

Progress = Callable[[str], None]

#: Seconds the gateway replica may take to answer on its port once Serve calls it ready.
INGRESS_CHECK_S = 30.0


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
        #: Where Serve's own HTTP proxy listens: the gateway's port with `ingress: proxy`;
        #: with `direct`, a free port picked at start (the proxy is then off the path).
        self.proxy_port = config.gateway.port

    @property
    def base_url(self) -> str:
        """The first gateway replica (the only one with `gateway.replicas: 1`)."""
        return self.gateway_urls[0]

    @property
    def gateway_urls(self) -> list[str]:
        """Where clients send HTTP on the head node: one URL per gateway replica with
        `ingress: direct` (replica i on `port + i`), the proxy's with `proxy`."""
        host = self.config.gateway.host
        return [f"{self.scheme}://{host}:{port}" for port in self.config.gateway.http_ports]

    @property
    def tls(self) -> bool:
        return self.config.gateway.tls is not None

    @property
    def scheme(self) -> str:
        """https with `gateway.tls` (Serve's HTTP server then serves TLS), else http."""
        return "https" if self.config.gateway.tls is not None else "http"

    @property
    def proxy_url(self) -> str:
        """Ray Serve's proxy: it routes every application by route prefix, in both modes."""
        return f"{self.scheme}://{self.config.gateway.host}:{self.proxy_port}"

    def app_base(self, app_name: str, route_prefix: str, *, timeout_s: float = 30.0) -> str:
        """Base URL (without the prefix) of another application deployed on this cluster:
        its own ingress replica with `ingress: direct` (found by `/-/routes`), else the
        proxy."""
        gateway = self.config.gateway
        if gateway.ingress == "proxy":
            return self.proxy_url
        ports = ingress_ports(gateway)
        port = find_app_port(
            gateway.host, ports, app_name, route_prefix, timeout_s=timeout_s, tls=self.tls
        )
        return f"{self.scheme}://{gateway.host}:{port}"

    def ingress_lines(self) -> list[str]:
        """What `modelyard up` prints about the front door."""
        gateway = self.config.gateway
        if gateway.ingress == "proxy":
            lines = [f"ingress: proxy (Ray Serve's proxy on {self.base_url} -> gateway replicas)"]
        else:
            lines = [
                "ingress: direct (clients connect to the gateway replica itself; Ray Serve's "
                f"proxy, not on the request path, listens on port {self.proxy_port})"
            ]
            if len(self.gateway_urls) > 1:
                lines.append(
                    f"  {len(self.gateway_urls)} gateway replicas: {', '.join(self.gateway_urls)}"
                    " (put a load balancer in front)"
                )
        if gateway.grpc_port is not None:
            lines.append(f"gRPC API: {gateway.host}:{gateway.grpc_port} (every gateway replica)")
        return lines

    def start(self, *, timeout_s: float = 300.0) -> dict[str, float]:
        """Start everything; return model id -> seconds until its deployment was ready.

        Raises `EngineUnavailable` if the application fails or is not ready in `timeout_s`
        (what was started is stopped first).
        """
        try:
            self._start_ray()
            self._start_serve()
            ready = self._deploy_and_wait(timeout_s)
            self._check_ingress()
            return ready
        except BaseException:
            self.stop()
            raise

    def _start_ray(self) -> None:
        import ray

        settings = self.config.ray
        if ray.is_initialized():
            return
        if settings.address is None:
            self._check_ports_free()
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
            self._progress(f"  Ray Serve ingress: {self.config.gateway.ingress}")
            # Serve reads its mode from the environment of each Ray process at import.
            with ray_environment(serve_environment(self.config.gateway)):
                context = ray.init(**kwargs)
            self._started_ray = True
            info: dict[str, Any] = getattr(context, "address_info", {})
            self.session_dir = str(info.get("session_dir", ""))
            self._progress(f"Ray session (logs): {self.session_dir}")
        else:
            self._progress(
                f"connecting to Ray at {settings.address} (its nodes' environment must set "
                f"Serve's ingress mode: gateway.ingress is {self.config.gateway.ingress}) ..."
            )
            ray.init(address=settings.address, namespace=settings.namespace, log_to_driver=False)
            self._connected = True

    def _start_serve(self) -> None:
        from ray import serve

        gateway = self.config.gateway
        if gateway.ingress == "direct":
            # The proxy must not take the port the gateway replica is given.
            self.proxy_port = _free_port(gateway.host)
        where = "gateway replica" if gateway.ingress == "direct" else "Serve proxy"
        self._progress(f"starting Ray Serve (HTTP on {self.base_url}, {where}) ...")
        serve.start(
            http_options={
                "host": gateway.host,
                "port": self.proxy_port,
                "request_timeout_s": gateway.request_timeout_s,
                "keep_alive_timeout_s": gateway.keep_alive_timeout_s,
                **serve_http_tls(gateway.tls),  # HTTPS on the proxy / gateway replicas
            },
            proxy_location="HeadOnly" if self._started_ray else "EveryNode",
            logging_config={"log_level": self.config.telemetry.log_level},
        )
        self._started_serve = True

    def _deploy_and_wait(self, timeout_s: float) -> dict[str, float]:
        from ray import serve

        application = build_app(self.config)
        names = {model.deployment_name: model.id for model in self.served}
        self._progress(f"deploying {len(names)} model(s) and the gateway ...")
        started_at = time.monotonic()
        serve.run_many(
            [
                serve.RunTarget(
                    target=application,
                    name=APP_NAME,
                    route_prefix="/",
                    logging_config={"log_level": self.config.telemetry.log_level},
                )
            ],
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

    def _check_ports_free(self) -> None:
        """Fail before starting anything if a gateway port is taken (with `direct`, Serve
        would otherwise give the replica the next port of its range)."""
        gateway = self.config.gateway
        for port in gateway.http_ports:
            try:
                _free_port(gateway.host, port)
            except OSError as err:
                raise ConfigError(
                    f"gateway.port: cannot listen on {gateway.host}:{port} ({err.strerror})",
                    param="gateway.port",
                ) from None

    def _check_ingress(self) -> None:
        """With `direct`, each gateway replica on the head node answers on its own port."""
        gateway = self.config.gateway
        if gateway.ingress != "direct" or not self._started_ray:
            return
        for port in gateway.http_ports:
            try:
                find_app_port(
                    gateway.host, [port], APP_NAME, "/", timeout_s=INGRESS_CHECK_S, tls=self.tls
                )
            except TimeoutError as err:
                raise EngineUnavailable(f"gateway (ingress direct): {err}") from None

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


def _free_port(host: str, port: int = 0) -> int:
    """`port` (or any, with 0) on `host` if it was free a moment ago; raises `OSError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound: int = sock.getsockname()[1]
        return bound
