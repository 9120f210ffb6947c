"""`EventStreamResponse`: streams API chunks as SSE, one task, with disconnect handling.

The route primes the stream (awaits its first chunk) before building this response, so an
error raised before the first chunk is still answered with its own status code. From here:
status 200, the first chunk, the rest, `[DONE]`. An error while streaming becomes an
`error` event followed by `[DONE]`. A client disconnect cancels the send loop; the chunk
stream is then closed (shielded from that cancellation), which releases the engine
requests behind it.

A client that stops reading: the server's `send` blocks once the socket's buffers and
the transport's high-water mark are full (uvicorn pauses writing), so nothing more is
pulled from the chunk stream and nothing piles up here. A send blocked for
`send_timeout_s` cuts the stream off the same way as a disconnect: the chunk stream is
closed (the engine requests are aborted and their KV blocks freed) and the app returns;
what stays is the socket with at most the transport's buffer, until the peer reads or
goes away.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping

import anyio
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from cluster.errors import ModelyardError
from cluster.gateway.http.sse import DONE, MEDIA_TYPE, chunk_event, error_event
from cluster.gateway.service import internal_error

logger = logging.getLogger("cluster.gateway.http")

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class EventStreamResponse(Response):
    media_type = MEDIA_TYPE

    def __init__(
        self,
        first: BaseModel | None,
        rest: AsyncGenerator[BaseModel, None],
        headers: Mapping[str, str] | None = None,
        send_timeout_s: float | None = None,
    ) -> None:
        super().__init__(status_code=200, headers={**SSE_HEADERS, **(headers or {})})
        # Response.__init__ declares `content-length: 0` for its empty body; a real server
        # (uvicorn, the Ray Serve proxy) would then send no event at all.
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._first = first
        self._rest = rest
        self._send_timeout_s = send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch_disconnect)
            try:
                await self._send_all(self._bounded(send))
            except _SendStalled:
                logger.info("client read nothing for %ss; stream cut off", self._send_timeout_s)
            finally:
                group.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await self._rest.aclose()

    def _bounded(self, send: Send) -> Send:
        """`send`, raising `_SendStalled` when one call blocks past `send_timeout_s`."""
        limit = self._send_timeout_s
        if limit is None:
            return send

        async def bounded(message: Message) -> None:
            try:
                with anyio.fail_after(limit):
                    await send(message)
            except TimeoutError:
                raise _SendStalled from None

        return bounded

    async def _send_all(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def body(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        try:
            if self._first is not None:
                await body(chunk_event(self._first))
            async for chunk in self._rest:
                await body(chunk_event(chunk))
        except _SendStalled:
            raise
        except ModelyardError as err:
            await body(error_event(err))
        except Exception:
            logger.exception("stream failed after it started")
            await body(error_event(internal_error()))
        await send({"type": "http.response.body", "body": DONE, "more_body": False})


class _SendStalled(Exception):
    """One `send` to the client blocked past the send timeout: the client reads nothing."""
