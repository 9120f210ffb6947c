"""The real gateway app with a ledger, served by uvicorn on 127.0.0.1 over SimEngine.

`billing_app(ledger_url, ...)` builds it exactly as a gateway replica does
(`cluster.gateway.http.build_gateway_app`, keys mode, the ledger URL and the pepper from the
environment mapping it is given), serves it on a free loopback port, and yields a `Rig`
with an httpx client and the app's key store. Everything stops when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import uvicorn

from bench.processes import free_port
from cluster.config import (
    AuthSettings,
    ClusterConfig,
    ModelDeployment,
    PriceTable,
    SimSettings,
    load_builtin_catalog,
)
from cluster.gateway.http import build_gateway_app
from cluster.gateway.service import EngineBackend
from cluster.ledger.keys import KeyStore
from cluster.ledger.runtime import Ledger
from deployments.engines.sim import SimEngine, VirtualClock
from tests.unit.ledger.helpers import PEPPER

QWEN = "qwen/qwen3-coder-flash"
STATIC_KEY = "static-test-key-0123456789"


@dataclass
class Rig:
    http: httpx.AsyncClient
    keys: KeyStore
    ledger: Ledger
    base_url: str
    app_state: Any  # the app's state: service, authenticator (what the gRPC door shares)

    async def chat(
        self, key: str | None, *, stream: bool = False, max_tokens: int = 8, **extra: object
    ) -> httpx.Response:
        body: dict[str, object] = {
            "model": QWEN,
            "messages": [{"role": "user", "content": "Say something."}],
            "max_tokens": max_tokens,
            **extra,
        }
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        headers = {} if key is None else {"authorization": f"Bearer {key}"}
        return await self.http.post("/api/v1/chat/completions", json=body, headers=headers)


@contextlib.asynccontextmanager
async def billing_app(
    ledger_url: str,
    *,
    prices: PriceTable | None = None,
    static_keys: Sequence[str] = (STATIC_KEY,),
    max_num_seqs: int = 256,
) -> AsyncIterator[Rig]:
    environ = {"MODELYARD_LEDGER_URL": ledger_url, "MODELYARD_KEY_PEPPER": PEPPER.decode()}
    digests = [hashlib.sha256(k.encode()).hexdigest() for k in static_keys]
    deployment = ModelDeployment(id=QWEN, prices=prices, sim=SimSettings(max_num_seqs=max_num_seqs))
    config = ClusterConfig(
        auth=AuthSettings(mode="keys", api_key_sha256=digests), models=[deployment]
    )
    served = config.served_models(load_builtin_catalog())
    backend = EngineBackend({QWEN: SimEngine(served[0], replica_id="r0", clock=VirtualClock())})
    await backend.start()
    app = build_gateway_app(config, served, backend, environ=environ)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    ledger: Ledger = app.state.ledger
    assert ledger.keys is not None
    try:
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
            yield Rig(http, ledger.keys, ledger, base_url, app.state)
    finally:
        server.should_exit = True
        await task
        await backend.shutdown()


def exact_json(text: str) -> Any:
    """JSON with its numbers read as `Decimal`: the digits the client received, exactly."""
    return json.loads(text, parse_float=Decimal)


def received(response: httpx.Response) -> tuple[str, Decimal, bool]:
    """(response id, `usage.cost`, whether the whole response arrived) of a chat response,
    whole or streamed (a stream is whole when it ends with `[DONE]` and no error event)."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        body = exact_json(response.text)
        return body["id"], body["usage"]["cost"], True
    events = [
        line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")
    ]
    done = bool(events) and events[-1] == "[DONE]"
    chunks = [exact_json(event) for event in events if event != "[DONE]"]
    errors = [chunk for chunk in chunks if "error" in chunk]
    usage = [chunk["usage"] for chunk in chunks if chunk.get("usage")]
    assert len(usage) <= 1
    cost = usage[0]["cost"] if usage else Decimal(0)
    return chunks[0]["id"], cost, done and not errors and bool(usage)
