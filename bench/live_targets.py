"""Where a live replay sends its requests: an OpenAI-compatible HTTP server or modelyard's
gRPC API. Each target streams one request and reports what the client saw.

    target = http_target(url, model=..., api="completions")   # or grpc_target("host:port")
    outcome = await target.send(prompt, max_tokens=n)

`Outcome.first_token` is the monotonic time the first generated text (or reasoning, or
tool-call piece) arrived — a role-only first event does not count; `usage` comes from the
stream's final usage event (HTTP: `stream_options.include_usage`; gRPC: always sent), with
`cached_tokens` from `usage.prompt_tokens_details.cached_tokens`. Failures are reported in
`Outcome.error` (HTTP status and body, or the typed error), never raised: one failed
request must not end a replay.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx

from cluster.engine import Usage
from cluster.errors import ModelyardError

if TYPE_CHECKING:
    from cluster.gateway.grpc.client import ChatChunk, Completion

Api = Literal["completions", "chat"]
ERROR_BODY_CHARS = 300


@dataclass(slots=True)
class Outcome:
    first_token: float | None = None
    end: float = 0.0
    usage: Usage | None = None
    error: str | None = None


class Target(Protocol):
    async def send(self, prompt: str, *, max_tokens: int) -> Outcome: ...

    async def aclose(self) -> None: ...


def _has_output(choice: dict[str, Any]) -> bool:
    if choice.get("text"):
        return True
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"))


class HttpTarget:
    """Streams `/v1/completions` or `/v1/chat/completions` of `base_url` with httpx."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api: Api = "completions",
        api_key: str | None = None,
        max_connections: int = 256,
        timeout_s: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        base = base.removesuffix("/v1")
        self.url = f"{base}/v1/{'chat/completions' if api == 'chat' else 'completions'}"
        self.model = model
        self.api = api
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=120.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
            transport=transport,
        )

    def body(self, prompt: str, max_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.api == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return body

    async def send(self, prompt: str, *, max_tokens: int) -> Outcome:
        out = Outcome()
        try:
            async with self._client.stream(
                "POST", self.url, json=self.body(prompt, max_tokens)
            ) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode("utf-8", "replace")
                    out.error = f"HTTP {response.status_code}: {text[:ERROR_BODY_CHARS]}"
                    return out
                async for line in response.aiter_lines():
                    self._read(line, out)
        except httpx.HTTPError as err:
            out.error = f"{type(err).__name__}: {err}"
        finally:
            out.end = time.monotonic()
        if out.error is None and out.usage is None:
            out.error = "the stream ended without usage"
        return out

    @staticmethod
    def _read(line: str, out: Outcome) -> None:
        if not line.startswith("data:"):
            return
        data = line[5:].strip()
        if data == "[DONE]":
            return
        # Parse only what is needed: events until the first token, then usage events.
        if out.first_token is not None and '"usage"' not in data:
            return
        event = json.loads(data)
        if "error" in event:
            out.error = json.dumps(event["error"])[:ERROR_BODY_CHARS]
            return
        if out.first_token is None and any(_has_output(c) for c in event.get("choices") or []):
            out.first_token = time.monotonic()
        if event.get("usage"):
            out.usage = Usage.from_openai(event["usage"])

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcTarget:
    """Streams `StreamComplete` or `StreamChat` through `cluster.gateway.grpc.client`."""

    def __init__(
        self,
        target: str,
        *,
        model: str,
        api: Api = "completions",
        api_key: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        from cluster.gateway.grpc.client import ModelyardClient

        self._client = ModelyardClient(target, api_key, max_message_bytes=16 * 1024 * 1024)
        self.model = model
        self.api = api
        self.timeout_s = timeout_s

    async def send(self, prompt: str, *, max_tokens: int) -> Outcome:
        from cluster.gateway.grpc.client import ChatRequest, CompletionRequest, user

        out = Outcome()
        try:
            if self.api == "chat":
                request = ChatRequest(
                    model=self.model, messages=[user(prompt)], max_tokens=max_tokens, temperature=0
                )
                stream = self._client.chat(request, deadline_s=self.timeout_s)
                async for chunk in stream:
                    if out.first_token is None and any(
                        c.delta.content or c.delta.reasoning_content or c.delta.tool_calls
                        for c in chunk.choices
                    ):
                        out.first_token = time.monotonic()
                    if (usage := _usage_of(chunk)) is not None:
                        out.usage = usage
            else:
                completion = CompletionRequest(
                    model=self.model, prompt=[prompt], max_tokens=max_tokens, temperature=0
                )
                async for event in self._client.complete(completion, deadline_s=self.timeout_s):
                    if out.first_token is None and any(c.text for c in event.choices):
                        out.first_token = time.monotonic()
                    if (usage := _usage_of(event)) is not None:
                        out.usage = usage
        except ModelyardError as err:
            out.error = f"{type(err).__name__}: {err.message}"
        finally:
            out.end = time.monotonic()
        if out.error is None and out.usage is None:
            out.error = "the stream ended without usage"
        return out

    async def aclose(self) -> None:
        await self._client.close()


def _usage_of(message: ChatChunk | Completion) -> Usage | None:
    """A streamed gRPC message's usage (set on the last one only), or None."""
    if not message.HasField("usage"):
        return None
    usage = message.usage
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
    )


def make_target(
    url: str, *, model: str, api: Api, api_key: str | None, max_connections: int
) -> Target:
    """`grpc://host:port` → gRPC; `http(s)://...` → HTTP."""
    if url.startswith("grpc://"):
        return GrpcTarget(url.removeprefix("grpc://"), model=model, api=api, api_key=api_key)
    if url.startswith(("http://", "https://")):
        return HttpTarget(
            url, model=model, api=api, api_key=api_key, max_connections=max_connections
        )
    raise ValueError(f"--live wants http://HOST:PORT or grpc://HOST:PORT, not {url!r}")
