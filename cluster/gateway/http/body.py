"""Read a request body ourselves, bounded: `Content-Length` over the limit is refused before
reading, and a body without one (chunked) is counted as it streams, so neither form can make
the gateway buffer more than `max_bytes`."""

from __future__ import annotations

from starlette.requests import Request

from cluster.errors import InvalidRequest, PayloadTooLarge


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")


async def read_body(request: Request, max_bytes: int) -> bytes:
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
