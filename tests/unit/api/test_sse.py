"""SSE framing and `EventStreamResponse`: frames, [DONE], errors mid-stream, disconnects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from pydantic import BaseModel

from cluster.errors import EngineUnavailable
from cluster.gateway.http.sse import DONE, chunk_event, data_event, error_event, parse_events
from cluster.gateway.http.streaming import EventStreamResponse


class Piece(BaseModel):
    n: int
    text: str = ""


@pytest.mark.parametrize(
    ("payload", "frame"),
    [
        ('{"a":1}', b'data: {"a":1}\n\n'),
        ("[DONE]", DONE),
        ("", b"data: \n\n"),
        ("line1\nline2", b"data: line1\ndata: line2\n\n"),
    ],
)
def test_data_event(payload: str, frame: bytes) -> None:
    assert data_event(payload) == frame
    assert parse_events(frame) == [payload]


def test_chunk_event_is_compact_json_with_escaped_newlines() -> None:
    frame = chunk_event(Piece(n=1, text="a\nb"))
    assert frame == b'data: {"n":1,"text":"a\\nb"}\n\n'
    assert frame.count(b"\n") == 2


def test_error_event_has_openai_error_shape() -> None:
    (payload,) = parse_events(error_event(EngineUnavailable("replica down")))
    assert json.loads(payload) == {
        "error": {
            "message": "replica down",
            "type": "service_unavailable",
            "param": None,
            "code": "engine_unavailable",
        }
    }


class Transport:
    """A hand-driven ASGI connection: records what is sent; may disconnect after N sends."""

    def __init__(self, disconnect_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.disconnect_after = disconnect_after
        self.body_sends = 0

    async def receive(self) -> dict[str, Any]:
        while self.disconnect_after is None or self.body_sends < self.disconnect_after:
            await self._tick()
        return {"type": "http.disconnect"}

    async def _tick(self) -> None:
        await asyncio.sleep(0.001)

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            self.body_sends += 1

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


class Source:
    def __init__(self, items: list[Piece | Exception], *, endless: bool = False) -> None:
        self.items = items
        self.endless = endless
        self.closed = False

    async def stream(self) -> AsyncGenerator[BaseModel, None]:
        try:
            for item in self.items:
                if isinstance(item, Exception):
                    raise item
                yield item
            n = len(self.items)
            while self.endless:
                await asyncio.sleep(0.001)
                n += 1
                yield Piece(n=n)
        finally:
            self.closed = True


SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions"}


async def test_stream_sends_first_rest_and_done() -> None:
    source = Source([Piece(n=2), Piece(n=3)])
    transport = Transport()
    response = EventStreamResponse(Piece(n=1), source.stream(), {"x-test": "1"})
    await response(SCOPE, transport.receive, transport.send)
    start = transport.sent[0]
    assert start["status"] == 200
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-test"] == "1"
    events = parse_events(transport.body)
    assert [json.loads(e)["n"] for e in events[:-1]] == [1, 2, 3]
    assert events[-1] == "[DONE]"
    assert transport.sent[-1]["more_body"] is False
    assert source.closed


async def test_error_after_start_is_an_event_then_done() -> None:
    source = Source([Piece(n=2), EngineUnavailable("replica died")])
    transport = Transport()
    await EventStreamResponse(Piece(n=1), source.stream())(SCOPE, transport.receive, transport.send)
    events = parse_events(transport.body)
    assert json.loads(events[2])["error"]["code"] == "engine_unavailable"
    assert events[3] == "[DONE]"
    assert len(events) == 4


async def test_unexpected_error_after_start_is_generic() -> None:
    source = Source([RuntimeError("token=sk-secret")])
    transport = Transport()
    await EventStreamResponse(Piece(n=1), source.stream())(SCOPE, transport.receive, transport.send)
    events = parse_events(transport.body)
    error = json.loads(events[1])["error"]
    assert error["type"] == "internal_error"
    assert "sk-secret" not in transport.body.decode()
    assert events[-1] == "[DONE]"


async def test_disconnect_stops_the_stream_and_closes_the_source() -> None:
    source = Source([], endless=True)
    transport = Transport(disconnect_after=3)
    async with asyncio.timeout(5):
        await EventStreamResponse(Piece(n=0), source.stream())(
            SCOPE, transport.receive, transport.send
        )
    assert source.closed
    assert DONE not in transport.body
