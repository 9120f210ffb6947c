"""How clients reach the gateway: the Ray environment of `gateway.ingress`.

Ray Serve reads its mode from environment variables when `ray.serve` is imported, in every
Serve process (controller, proxy, replicas). So the mode cannot be an argument of
`serve.start`: it has to be in the environment of the Ray processes before they start.
`serve_environment(gateway)` is that environment; `ray_environment(env)` applies it to
the Ray instance a process starts (`ray.init` spawns the raylet, which spawns every worker,
with this process's environment), and restores this process's own environment afterwards.
For a Ray cluster started elsewhere (KubeRay), the same variables go into the pod spec of
every node (docs/GPU_DEPLOYMENT.md).

`direct` (Ray Serve 2.60, `ray/serve/_private/constants.py`):

- `RAY_SERVE_THROUGHPUT_OPTIMIZED=1` turns on direct ingress (each ingress replica runs
  its own HTTP server, allocated a port from the range below by the controller, one port
  allocator per node), gRPC instead of actor calls between deployments, user code and the
  request router on the replica's main event loop, buffered request logs, no log copy on
  stderr, and a frozen GC after start. Each of those can still be overridden by its own
  variable in the environment (they are read with this mode's defaults).
- `RAY_SERVE_DIRECT_INGRESS_MIN/MAX_HTTP_PORT`: the controller hands out `range(min, max)`
  per node, lowest free port first, and skips (and blocks) a port it fails to bind. The
  range is `ingress_ports(gateway)`: `port .. port + replicas - 1` for the gateway replicas,
  which are deployed first and so take exactly those (replica i of a node on `port + i`;
  `LocalCluster` checks that the port is free before and answers after), then
  `EXTRA_APP_PORTS` more for the ingress replicas of other Serve applications deployed
  beside ours (tests, benchmarks), each found by asking `/-/routes` (`find_app_port`).
- `RAY_SERVE_PORT_QUARANTINE_S=0`: a released port is kept out of the pool for 150 s by
  default (for HAProxy, which we do not run); with a pinned range that would leave a
  restarted gateway replica without a port.
- `RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S=0`: the 30 s default keeps a stopping
  ingress replica open so that a cloud load balancer can deregister it; a local cluster
  has none (in-flight requests are still drained). Set it for a cluster behind one.

`proxy` sets `RAY_SERVE_THROUGHPUT_OPTIMIZED=0` and `RAY_SERVE_ENABLE_DIRECT_INGRESS=0`,
so a variable left in the shell cannot switch the mode behind the cluster file's back.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import httpx

from cluster.config.settings import GatewaySettings

#: Ports past the gateway's own for ingress replicas of other Serve applications.
EXTRA_APP_PORTS = 8


def ingress_ports(gateway: GatewaySettings) -> range:
    """Every port direct ingress may hand out on one node (the gateway's come first)."""
    first = gateway.http_ports[0]
    return range(first, min(65536, first + len(gateway.http_ports) + EXTRA_APP_PORTS))


def serve_environment(gateway: GatewaySettings) -> dict[str, str]:
    """The variables every Serve process of this cluster must see (see module docstring)."""
    if gateway.ingress == "proxy":
        return {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}
    ports = ingress_ports(gateway)
    return {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(ports.start),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(ports.stop),
        "RAY_SERVE_PORT_QUARANTINE_S": "0",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
    }


@contextmanager
def ray_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set `env` in this process for the block (around `ray.init`), then restore it."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _readiness_tls() -> ssl.SSLContext:
    """TLS for asking our own listener on this node whether it is up (`/-/routes`): the
    answer is a readiness signal, never trusted data, so the certificate (possibly issued
    for a public name, not this address) is not verified here; clients verify it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def app_routes(host: str, port: int, *, tls: bool = False) -> dict[str, str] | None:
    """`GET /-/routes` of whatever listens on `port`: `{route_prefix: app_name}` (a direct
    ingress replica names its own application only, a Serve proxy every one), or None.
    `tls`: the listener serves HTTPS (`gateway.tls`)."""
    scheme = "https" if tls else "http"
    try:
        reply = httpx.get(
            f"{scheme}://{host}:{port}/-/routes",
            timeout=2.0,
            verify=_readiness_tls() if tls else True,
        )
    except httpx.HTTPError:
        return None
    if reply.status_code != 200:
        return None
    try:
        routes = reply.json()
    except ValueError:
        return None
    return routes if isinstance(routes, dict) else None


def find_app_port(
    host: str,
    ports: Iterable[int],
    app_name: str,
    route_prefix: str,
    *,
    timeout_s: float,
    tls: bool = False,
) -> int:
    """The port of `ports` whose direct ingress replica serves exactly `app_name` at
    `route_prefix`; polls until `timeout_s` (raises `TimeoutError`)."""
    candidates = list(ports)
    deadline = time.monotonic() + timeout_s
    while True:
        for port in candidates:
            if app_routes(host, port, tls=tls) == {route_prefix: app_name}:
                return port
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no direct ingress replica of app {app_name!r} on {host} ports "
                f"{candidates[0]}-{candidates[-1]} within {timeout_s:.0f}s"
            )
        time.sleep(0.2)
