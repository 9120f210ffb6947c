"""Server-sent events framing, as OpenAI streams: `data: <json>\n\n` … `data: [DONE]\n\n`.

Pure functions over bytes; `EventStreamResponse` (streaming.py) sends what they return.
An error after the stream started travels as `data: {"error": {...}}` followed by
`[DONE]`, so a client always sees the stream end.
"""

from __future__ import annotations

from pydantic import BaseModel

from cluster.api.responses import ErrorResponse
from cluster.errors import ModelyardError

DONE = b"data: [DONE]\n\n"
MEDIA_TYPE = "text/event-stream"


def data_event(payload: str) -> bytes:
    """One event; a payload with line breaks becomes several `data:` lines (SSE spec)."""
    lines = payload.splitlines() or [""]
    return "".join(f"data: {line}\n" for line in lines).encode() + b"\n"


def chunk_event(chunk: BaseModel) -> bytes:
    return data_event(chunk.model_dump_json())


def error_event(err: ModelyardError) -> bytes:
    return data_event(ErrorResponse.of(err).model_dump_json())


def parse_events(stream: bytes) -> list[str]:
    """The `data` payloads of a complete SSE byte stream (for clients and tests)."""
    events: list[str] = []
    for block in stream.decode().split("\n\n"):
        lines = [
            line[len("data:") :].removeprefix(" ")
            for line in block.split("\n")
            if line.startswith("data:")
        ]
        if lines:
            events.append("\n".join(lines))
    return events
