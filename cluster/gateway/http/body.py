"""Read a request body ourselves, bounded: `Content-Length` over the limit is refused before
reading, and a body without one (chunked) is counted as it streams, so neither form can make
the gateway buffer more than `max_bytes`. A body that trickles in is cut off when it has not
arrived whole within `timeout_s` (408)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from cluster.errors import InvalidRequest, PayloadTooLarge, RequestTimeout


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")


async def read_body(request: Request, max_bytes: int, timeout_s: float | None = None) -> bytes:
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(request, max_bytes)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout_s:g} seconds.", param="body"
        ) from None


async def _read(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise InvalidRequest("The Content-Length header is not a number.")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    parts: list[bytes] = []
    total = 0
    async for part in request.stream():
        total += len(part)
        if total > max_bytes:
            raise _too_large(max_bytes)
        parts.append(part)
    return b"".join(parts)
