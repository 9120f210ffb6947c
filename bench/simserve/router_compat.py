"""Accept requests re-serialized by SGLang-family routers.

SGLang's router (and `vllm-router`, derived from it) parses each OpenAI request into its
own typed struct and forwards that struct re-serialized, so every request reaching the
worker carries SGLang's extension fields, set to their defaults even when the client never
sent them:

    /v1/completions        echo, no_stop_trim, ignore_eos, skip_special_tokens,
                           return_hidden_states
    /v1/chat/completions   logprobs, no_stop_trim, ignore_eos, continue_final_message,
                           skip_special_tokens, separate_reasoning, stream_reasoning,
                           return_hidden_states

modelyard's API forbids unknown keys (a client typo is a 400). `RouterExtensionFilter`
drops exactly these keys when they hold the value that means "no effect" (the table
`NO_EFFECT`), before the gateway validates the body, so the request means the same thing
with or without them. A non-default value (say `ignore_eos: true`) is left in place, and
the gateway refuses it with a 400 naming the key: the simulator cannot honour it, and
silently ignoring it would skew a benchmark.

Only POST bodies of the completion routes up to `max_body_bytes` are touched; anything
else (bigger bodies, non-JSON) passes through unchanged for the gateway to judge.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster.gateway.http.app import COMPLETION_PATHS

NO_EFFECT: dict[str, Any] = {
    "echo": False,
    "no_stop_trim": False,
    "ignore_eos": False,
    "skip_special_tokens": True,
    "return_hidden_states": False,
    "continue_final_message": False,
    "separate_reasoning": True,
    "stream_reasoning": True,
    "logprobs": False,
}
ROUTES = frozenset(COMPLETION_PATHS)


def strip_no_effect_fields(body: dict[str, Any]) -> dict[str, Any]:
    """`body` without the extension keys that hold their no-effect value."""
    return {key: value for key, value in body.items() if not _no_effect(key, value)}


def _no_effect(key: str, value: Any) -> bool:
    default = NO_EFFECT.get(key)
    return default is not None and type(value) is type(default) and value == default


def rewrite(raw: bytes) -> bytes:
    """The body with no-effect extension keys removed; unchanged if none or not JSON."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(body, dict) or not any(_no_effect(k, v) for k, v in body.items()):
        return raw
    return json.dumps(strip_no_effect_fields(body), separators=(",", ":")).encode("utf-8")


class RouterExtensionFilter:
    """ASGI middleware applying `rewrite` to completion request bodies."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in ROUTES:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                replay = _replayer(chunks, message, receive)
                await self.app(scope, replay, send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
            if size > self.max_body_bytes:  # too big: pass it on untouched (the app says 413)
                await self.app(scope, _replayer(chunks, None, receive, more=more), send)
                return
        body = rewrite(b"".join(chunks))
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        await self.app({**scope, "headers": headers}, _replayer([body], None, receive), send)


def _replayer(
    chunks: list[bytes], last: Message | None, receive: Receive, *, more: bool = False
) -> Receive:
    """A `receive` that first yields what was already read, then defers to the original."""
    pending: list[Message] = [
        {"type": "http.request", "body": c, "more_body": True} for c in chunks
    ]
    if pending and not more:
        pending[-1]["more_body"] = False
    if last is not None:
        pending.append(last)
    if not pending:
        pending.append({"type": "http.request", "body": b"", "more_body": more})

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
