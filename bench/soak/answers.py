"""The soak's requests and how their answers are checked; no Locust here (importing Locust
monkey-patches the process for gevent), so tests and the load generator share it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

#: (kind, endpoint, streamed): the request mix, in the order each user cycles through it.
MIX: tuple[tuple[str, str, bool], ...] = (
    ("chat-stream", "/api/v1/chat/completions", True),
    ("chat", "/api/v1/chat/completions", False),
    ("completion-stream", "/api/v1/completions", True),
    ("completion", "/api/v1/completions", False),
)
REQUEST_TIMEOUT_S = 30.0


def request_body(kind: str, model: str, streamed: bool, n: int, max_tokens: int) -> dict[str, Any]:
    text = f"Soak request {n}: describe a lighthouse in a storm."
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if kind.startswith("chat"):
        body["messages"] = [{"role": "user", "content": text}]
    else:
        body["prompt"] = text
    if streamed:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


#: Fields of a streamed choice that carry generated tokens (reasoning models start with
#: `reasoning`; completions stream `text`).
TOKEN_FIELDS = ("content", "reasoning", "reasoning_content", "tool_calls")


def has_text(chunk: dict[str, Any]) -> bool:
    """Whether a streamed chunk carries a generated token (the first one is the TTFT)."""
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if choice.get("text") or any(delta.get(name) for name in TOKEN_FIELDS):
            return True
    return False


def read_stream(lines: Iterable[Any], started: float) -> tuple[float | None, str | None]:
    """(time to the first event with text, error or None) of an SSE answer."""
    ttft: float | None = None
    usage = done = False
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not line.startswith("data: "):
            continue
        data = line[len("data: ") :]
        if data == "[DONE]":
            done = True
            break
        chunk = json.loads(data)
        if "error" in chunk:
            return ttft, f"stream error: {chunk['error'].get('code')}"
        if ttft is None and has_text(chunk):
            ttft = time.perf_counter() - started
        usage = usage or bool(chunk.get("usage"))
    if not done:
        return ttft, "stream ended without [DONE]"
    if not usage:
        return ttft, "stream without a usage chunk"
    return ttft, None


def check_body(body: dict[str, Any]) -> str | None:
    if not body.get("choices"):
        return "answer without choices"
    if not body.get("usage"):
        return "answer without usage"
    return None
