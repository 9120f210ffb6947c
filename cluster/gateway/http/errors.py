"""The HTTP edge of the error tree: every failure leaves as OpenAI's error object.

- `ModelyardError` → its `http_status` and `{"error": {message, type, param, code}}`
  (plus `Retry-After` when the error says when to retry: `Overloaded`; and
  `Connection: close` after a 408 or 413, whose body was not read to its end);
- Starlette's 404 (no such route) and 405 (wrong method, with `Allow`) → the same shape;
- anything else → 500 with a generic message, logged with its traceback (`ErrorBoundary`),
  never echoed to the client; the server keeps serving.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cluster.api.responses import ErrorBody, ErrorResponse
from cluster.errors import ModelyardError, PayloadTooLarge, RequestTimeout
from cluster.gateway.service import internal_error

logger = logging.getLogger("cluster.gateway.http")


def error_response(err: ModelyardError, headers: dict[str, str] | None = None) -> Response:
    """`err` as OpenAI's error object; one with `retry_after_s` (RateLimited, Overloaded)
    also sends `Retry-After`."""
    if err.retry_after_s is not None:
        headers = {**(headers or {}), "retry-after": str(err.retry_after_s)}
    return json_error(ErrorResponse.of(err), err.http_status, headers)


def json_error(body: ErrorResponse, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body.model_dump_json(), status, headers, media_type="application/json")


#: Refusals that leave the request body unread: the connection is closed after them, as
#: what the client still sends could not be told from a next request.
_BODY_UNREAD = (RequestTimeout, PayloadTooLarge)


async def on_modelyard_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelyardError)
    return error_response(exc, {"connection": "close"} if isinstance(exc, _BODY_UNREAD) else None)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404:
        message, code = f"Invalid URL ({where})", "unknown_url"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message, code = f"Method not allowed ({where}); allowed: {allowed}", "method_not_allowed"
    else:
        message, code = str(exc.detail), None
    body = ErrorResponse(
        error=ErrorBody(message=message, type="invalid_request_error", param=None, code=code)
    )
    return json_error(body, exc.status_code, dict(exc.headers or {}))


class ErrorBoundary:
    """ASGI middleware: an unexpected exception becomes a generic 500 (if nothing was sent
    yet) and a log line with the traceback; it does not propagate to the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            logger.info("client went away during %s %s", scope.get("method"), scope.get("path"))
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await error_response(internal_error())(scope, receive, send)
