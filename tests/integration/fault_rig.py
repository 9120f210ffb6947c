"""Shared parts of the fault-injection scripts (`fault_*.py`, each run in its own subprocess
by `test_faults_live.py`, with its own Ray and RAY_TMPDIR).

- `use_ledger(dir)`: the ledger ON for every Ray process started afterwards: a SQLite file,
  named by `MODELYARD_LEDGER_URL` in this process's environment (Ray's workers inherit it),
  migrated here first; `ledger_rows(url)` reads the records back.
- `chat(...)`: one OpenAI-style request over HTTP (streamed or not), summarised as an
  `Outcome`: status, response id, content chunks received, the error code if any, and
  whether the stream ended with `[DONE]`.
- `routing(base)`: the gateway router's snapshot (`GET /debug/routing`, loopback only);
  `wait_replaced(...)`: until Serve runs the deployment's replicas again without the victim.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

QWEN = "qwen/qwen3-coder-flash"
MISTRAL = "casperhansen/mistral-small-24b-instruct-2501-awq"
LEDGER_ENV = "MODELYARD_LEDGER_URL"


def use_ledger(directory: Path) -> str:
    from cluster.ledger.database import create_ledger_engine, migrate

    url = f"sqlite:///{directory / 'ledger.sqlite'}"
    engine = create_ledger_engine(url)
    migrate(engine)
    engine.dispose()
    os.environ[LEDGER_ENV] = url
    return url


def ledger_rows(url: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from cluster.ledger.database import create_ledger_engine
    from cluster.ledger.schema import reservations, usage_records

    engine = create_ledger_engine(url)
    u = usage_records.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(u.request_id, u.model, u.status, u.completion_tokens, u.cost_nano)
        ).all()
        open_reservations = connection.execute(select(reservations.c.request_id)).all()
    engine.dispose()
    assert not open_reservations, open_reservations
    return [row._asdict() for row in rows]


@dataclass
class Outcome:
    index: int
    stream: bool
    status: int = 0
    id: str | None = None
    content_chunks: int = 0
    error: str | None = None
    done: bool = False
    completion_tokens: int | None = None
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and self.done

    def report(self) -> dict[str, Any]:
        return asdict(self)


def body(model: str, prompt: str, max_tokens: int, *, stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }
    if stream:
        out |= {"stream": True, "stream_options": {"include_usage": True}}
    return out


async def chat(
    client: httpx.AsyncClient, index: int, model: str, prompt: str, max_tokens: int, *, stream: bool
) -> Outcome:
    """One request; never raises for an HTTP-level failure (it is in the `Outcome`)."""
    out = Outcome(index=index, stream=stream, started_at=time.monotonic())
    payload = body(model, prompt, max_tokens, stream=stream)
    try:
        if stream:
            async with client.stream("POST", "/v1/chat/completions", json=payload) as reply:
                out.status = reply.status_code
                async for line in reply.aiter_lines():
                    if line.startswith("data: "):
                        _event(out, line[len("data: ") :])
                if reply.status_code != 200:
                    out.error = _error_code(await reply.aread())
        else:
            reply = await client.post("/v1/chat/completions", json=payload)
            out.status = reply.status_code
            data = reply.json()
            if reply.status_code == 200:
                out.id, out.done = data["id"], True
                out.content_chunks = 1
                out.completion_tokens = data["usage"]["completion_tokens"]
            else:
                out.error = data["error"].get("code") or data["error"].get("type")
    except httpx.HTTPError as err:
        out.error = f"transport: {type(err).__name__}"
    out.ended_at = time.monotonic()
    return out


def _event(out: Outcome, data: str) -> None:
    if data == "[DONE]":
        out.done = True
        return
    event = json.loads(data)
    if "error" in event:
        out.error = event["error"].get("code") or event["error"].get("type")
        return
    out.id = out.id or event.get("id")
    if event.get("usage"):
        out.completion_tokens = event["usage"]["completion_tokens"]
    for choice in event.get("choices", []):
        if choice.get("delta", {}).get("content"):
            out.content_chunks += 1


def _error_code(raw: bytes) -> str:
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        return "unparsed"
    return str(error.get("code") or error.get("type"))


def routing(base_url: str) -> dict[str, Any]:
    """The gateway's router snapshot per model (`routing.debug_endpoint: true`)."""
    reply = httpx.get(f"{base_url}/debug/routing", timeout=10)
    reply.raise_for_status()
    found: dict[str, Any] = reply.json()
    return found


def replica_states(app: str, deployment: str) -> dict[str, int]:
    from ray import serve

    status = serve.status().applications.get(app)
    if status is None or deployment not in status.deployments:
        return {}
    states = status.deployments[deployment].replica_states
    return {str(getattr(k, "value", k)): int(v) for k, v in states.items()}


def wait_replaced(
    base: str, deployment: str, victim: str, since: float, *, replicas: int, model: str = QWEN
) -> float:
    """Seconds from `since` until Serve runs `replicas` replicas of `deployment` again and
    the gateway's router knows all of them, none of them the victim (a new one in its place)."""
    from deployments.app import APP_NAME

    while time.monotonic() - since < 60.0:
        if replica_states(APP_NAME, deployment) == {"RUNNING": replicas}:
            known = routing(base)[model]["replicas"]
            if len(known) == replicas and victim not in known:
                return time.monotonic() - since
        time.sleep(0.1)
    raise TimeoutError(f"{deployment}: {victim} was not replaced ({replicas} replicas)")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")
