"""Slow and hostile clients against the real gateway HTTP server on loopback (uvicorn, the
gateway app, one simulated engine on a real clock): each limit of `gateway:` is hit by a
real socket, and the answer is the limit's status with OpenAI's error object, or the
connection is closed, in bounded time. docs/RELIABILITY.md lists these rows.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cluster.config import GatewaySettings
from tests.unit.gateway.clients.harness import MODEL, SERVER_SNDBUF, Gateway, running_gateway

pytestmark = pytest.mark.timeout(120)

LIMITS = GatewaySettings(
    host="127.0.0.1",
    max_body_bytes=64 * 1024,
    max_header_count=40,
    max_header_bytes=8 * 1024,
    body_timeout_s=1.0,
    send_timeout_s=1.0,
    keep_alive_timeout_s=1,
)
CLIENT_RCVBUF = 4 * 1024
#: The transport's high-water mark (asyncio's default; uvicorn pauses the app past it).
TRANSPORT_HIGH_WATER = 64 * 1024


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    # Half real time: answers take seconds, long enough to misbehave during.
    with running_gateway(LIMITS, speedup=0.5) as live:
        yield live


def _chat(max_tokens: int, stream: bool) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a very long essay about rivers."}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


def _error(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def _connect(gateway: Gateway, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect((gateway.host, gateway.port))
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    parts = []
    while part := sock.recv(65536):
        parts.append(part)
    return b"".join(parts)


def _request_head(path: str, body_length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Content-Length: {body_length}\r\n\r\n"
    ).encode()


def test_too_many_header_fields_get_431_naming_headers(gateway: Gateway) -> None:
    headers = {f"x-filler-{i}": "1" for i in range(LIMITS.max_header_count + 1)}
    reply = httpx.post(f"{gateway.base}/v1/chat/completions", json=_chat(4, False), headers=headers)
    assert reply.status_code == 431
    error = _error(reply)
    assert (error["code"], error["param"]) == ("headers_too_large", "headers")


def test_oversized_headers_get_431_naming_the_header(gateway: Gateway) -> None:
    big = "a" * LIMITS.max_header_bytes
    reply = httpx.post(
        f"{gateway.base}/v1/chat/completions", json=_chat(4, False), headers={"x-big": big}
    )
    assert reply.status_code == 431
    error = _error(reply)
    assert (error["code"], error["param"]) == ("headers_too_large", "x-big")


def test_headers_within_the_limits_are_served(gateway: Gateway) -> None:
    headers = {f"x-filler-{i}": "1" for i in range(LIMITS.max_header_count - 10)}
    reply = httpx.post(f"{gateway.base}/v1/chat/completions", json=_chat(4, False), headers=headers)
    assert reply.status_code == 200
    assert reply.json()["usage"]["completion_tokens"] <= 4


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_body_over_the_limit_gets_413(gateway: Gateway, declared: bool) -> None:
    payload = json.dumps({**_chat(4, False), "pad": "x" * LIMITS.max_body_bytes}).encode()
    content: bytes | Iterator[bytes] = payload if declared else iter([payload])
    reply = httpx.post(
        f"{gateway.base}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 413
    assert _error(reply)["code"] == "payload_too_large"


def test_a_body_that_trickles_in_is_cut_off_with_408(gateway: Gateway) -> None:
    body = json.dumps(_chat(4, False)).encode()
    sock = _connect(gateway)
    started = time.monotonic()
    try:
        sock.sendall(_request_head("/v1/chat/completions", len(body)))
        sent = 0
        # One byte every 0.25 s, for as long as the server has not answered.
        while not select.select([sock], [], [], 0.25)[0] and sent < len(body):
            sock.sendall(body[sent : sent + 1])
            sent += 1
        answered_s = time.monotonic() - started
        answer = _read_all(sock)  # the answer, then the server closes the connection
    finally:
        sock.close()
    closed_s = time.monotonic() - started
    print(
        f"trickled body: 408 after {answered_s:.2f} s, closed after {closed_s:.2f} s, "
        f"{sent} of {len(body)} bytes sent"
    )
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), head
    error = json.loads(payload)["error"]
    assert (error["code"], error["param"]) == ("request_timeout", "body")
    assert sent < len(body)
    assert LIMITS.body_timeout_s <= answered_s < LIMITS.body_timeout_s + 2.0
    assert closed_s < answered_s + 0.9  # `Connection: close`: not the 1 s keep-alive timer


def test_an_idle_keep_alive_connection_is_closed(gateway: Gateway) -> None:
    body = json.dumps(_chat(2, False)).encode()
    sock = _connect(gateway)
    try:
        sock.sendall(_request_head("/v1/chat/completions", len(body)) + body)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        idle_from = time.monotonic()
        rest = _read_all(sock)  # returns when the server closes the idle connection
        idle_s = time.monotonic() - idle_from
    finally:
        sock.close()
    print(f"idle keep-alive connection closed after {idle_s:.2f} s")
    assert b"HTTP/1.1" not in rest
    assert idle_s < LIMITS.keep_alive_timeout_s + 2.0


def _many_answers() -> dict[str, Any]:
    """32 prompts x 4 samples: 128 engine requests stream into one response (~3 MB)."""
    prompts = [f"Essay {i} about rivers and lakes" for i in range(32)]
    return {
        "model": MODEL,
        "prompt": prompts,
        "n": 4,
        "max_tokens": 200,
        "temperature": 1.0,
        "stream": True,
    }


def test_a_reader_that_stops_reading_is_cut_off_with_bounded_buffers(gateway: Gateway) -> None:
    """A client reads the response head and then nothing while a long answer streams: the
    gateway takes in at most its transport's high-water mark plus the socket buffers, then
    its send blocks (so nothing more is pulled from the engines), the stream is cut off
    after `send_timeout_s`, and the engine requests are aborted with their KV blocks freed,
    long before the answer would have ended. The same request read normally first gives
    the answer's size and duration to compare with."""
    body = json.dumps(_many_answers()).encode()
    started = time.monotonic()
    with httpx.stream("POST", f"{gateway.base}/v1/completions", content=body) as reply:
        assert reply.status_code == 200
        whole_bytes = sum(len(part) for part in reply.iter_bytes())
    whole_s = time.monotonic() - started
    assert whole_bytes > 1_000_000 and whole_s > 2.0

    gateway.wait_idle(5)
    before = gateway.sent.total
    sock = _connect(gateway, rcvbuf=CLIENT_RCVBUF)
    try:
        sock.sendall(_request_head("/v1/completions", len(body)) + body)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200 ")
        assert gateway.engine_stats().running > 0
        freed_after = gateway.wait_idle(30)  # the client still reads nothing
        taken = gateway.sent.total - before
        stats = gateway.engine_stats()
    finally:
        sock.close()
    print(
        f"stalled reader: took {taken} B of {whole_bytes} B, freed after {freed_after:.2f} s "
        f"(whole answer {whole_s:.2f} s)"
    )
    # Linux doubles both socket buffer sizes; one SSE event is well under 4 KiB.
    ceiling = TRANSPORT_HIGH_WATER + 2 * SERVER_SNDBUF + 2 * CLIENT_RCVBUF + 4096
    assert 0 < taken <= ceiling < whole_bytes, (taken, ceiling, whole_bytes)
    assert (stats.running, stats.waiting, stats.kv_usage) == (0, 0, 0.0)
    assert LIMITS.send_timeout_s <= freed_after < whole_s / 2, (freed_after, whole_s)


def test_a_client_that_hangs_up_mid_stream_aborts_the_engine_request(gateway: Gateway) -> None:
    assert gateway.wait_idle(5) >= 0
    with (
        httpx.Client(timeout=10) as client,
        client.stream("POST", f"{gateway.base}/v1/chat/completions", json=_chat(2000, True)) as r,
    ):
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        assert "chat.completion.chunk" in first
        busy = gateway.engine_stats()
        assert busy.running == 1 and busy.kv_usage > 0.0
    freed_after = gateway.wait_idle(5)  # the response closed: the client hung up
    stats = gateway.engine_stats()
    print(f"hang-up: engine request aborted, KV freed {freed_after:.2f} s after the close")
    assert (stats.running, stats.waiting, stats.kv_usage) == (0, 0, 0.0)
    assert freed_after < 5
