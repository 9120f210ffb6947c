"""`gateway.ingress` on a live cluster: who listens on the gateway's port, and both doors work.

- `direct` (the default; the package's shared cluster, started like `modelyard up`): the
  process listening on `gateway.port` is the gateway replica itself, Serve's proxy listens
  elsewhere, and an OpenAI SDK stream over HTTP and a gRPC stream (the gRPC server lives in
  the same replica) both answer.
- `proxy`: `modelyard up --ingress proxy` in a subprocess (the mode is fixed when Ray
  starts, so it needs a Ray of its own): Serve's proxy holds `gateway.port`, the same two
  calls answer, Ctrl-C stops it.

Listening sockets are matched to processes through /proc (Ray titles its workers
`ray::ServeReplica:<app>:<deployment>` and `ray::ProxyActor`). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import openai
import pytest

from bench.processes import free_port
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, user
from deployments.launcher import LocalCluster
from tests.integration.live import HTTP_TIMEOUT_S, MISTRAL, QWEN
from tests.integration.up_process import UpProcess, one_model_config

pytestmark = pytest.mark.integration

GATEWAY_TITLE = "ServeReplica:modelyard:gateway"
PROXY_TITLE = "ProxyActor"
READY_TIMEOUT_S = 150.0
STOP_TIMEOUT_S = 60.0
DEADLINE_S = 30.0


def listener(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process with a listening TCP socket on `port`."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == "0A" and local_port == port:  # 0A: LISTEN
                inodes.add(fields[9])
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
            if any(link[8:-1] in inodes for link in links if link.startswith("socket:[")):
                cmdline = (fd_dir.parent / "cmdline").read_bytes()
                return int(fd_dir.parent.name), cmdline.replace(b"\0", b" ").decode()
        except OSError:  # a process that ended, or one we may not read
            continue
    return None


def sdk_stream(base_url: str, model: str) -> int:
    """Stream a chat through the OpenAI SDK; return the usage's completion tokens."""
    with openai.OpenAI(
        base_url=base_url + "/v1", api_key="any", timeout=HTTP_TIMEOUT_S, max_retries=0
    ) as client:
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "Say something."}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert chunks[-1].usage is not None
    streamed = sum(1 for c in chunks if c.choices and c.choices[0].delta.content)
    assert chunks[-1].usage.completion_tokens == streamed == 6
    return streamed


async def grpc_stream(target: str, model: str) -> int:
    request = ChatRequest(model=model, messages=[user("Say something.")], max_tokens=5)
    async with ModelyardClient(target) as client:
        chunks = [c async for c in client.chat(request, deadline_s=DEADLINE_S)]
    assert chunks[-1].HasField("usage")
    return int(chunks[-1].usage.completion_tokens)


def test_direct_ingress_gateway_replica_holds_the_port(live_cluster: LocalCluster) -> None:
    gateway = live_cluster.config.gateway
    assert gateway.ingress == "direct"
    assert gateway.grpc_port is not None
    http_owner = listener(gateway.port)
    assert http_owner is not None and GATEWAY_TITLE in http_owner[1], http_owner
    # The gRPC API runs in the same replica process, on the replica's event loop.
    grpc_owner = listener(gateway.grpc_port)
    assert grpc_owner is not None and grpc_owner[0] == http_owner[0], grpc_owner
    # Serve's proxy still runs, on a port of its own, off the request path.
    assert live_cluster.proxy_port != gateway.port
    proxy_owner = listener(live_cluster.proxy_port)
    assert proxy_owner is not None and PROXY_TITLE in proxy_owner[1], proxy_owner
    # The replica answers for its own application only.
    routes = httpx.get(f"{live_cluster.base_url}/-/routes", timeout=HTTP_TIMEOUT_S).json()
    assert routes == {"/": "modelyard"}


async def test_direct_ingress_serves_http_and_grpc(live_cluster: LocalCluster) -> None:
    gateway = live_cluster.config.gateway
    assert await asyncio.to_thread(sdk_stream, live_cluster.base_url, QWEN) == 6
    assert await grpc_stream(f"{gateway.host}:{gateway.grpc_port}", QWEN) == 5


def test_up_with_proxy_ingress(tmp_path: Path) -> None:
    port, grpc_port = free_port(), free_port()
    config = one_model_config(tmp_path / "one-model.yaml", "ingress-proxy-test")
    argv = ["--config", str(config), "--ingress", "proxy"]
    up = UpProcess([*argv, "--port", str(port), "--grpc-port", str(grpc_port)])
    process, seen, read_until = up.process, up.seen, up.read_until

    try:
        assert read_until("Press Ctrl-C to stop.", READY_TIMEOUT_S), "\n".join(seen[-40:])
        assert any(line.startswith("ingress: proxy") for line in seen), "\n".join(seen)
        owner = listener(port)
        assert owner is not None and PROXY_TITLE in owner[1], owner
        grpc_owner = listener(grpc_port)
        assert grpc_owner is not None and GATEWAY_TITLE in grpc_owner[1], grpc_owner
        assert sdk_stream(f"http://127.0.0.1:{port}", MISTRAL) == 6
        assert asyncio.run(grpc_stream(f"127.0.0.1:{grpc_port}", MISTRAL)) == 5

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    finally:
        up.kill()
    assert listener(port) is None
