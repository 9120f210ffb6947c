"""What one HTTP client may cost the gateway: header size, body time, a stream's stall.

    header fields   len(headers)                  ≤ gateway.max_header_count   else 431
    header bytes    Σ len(name) + len(value)      ≤ gateway.max_header_bytes   else 431
    body time       whole body read within        gateway.body_timeout_s       else 408
    send stall      one SSE send blocked at most  gateway.send_timeout_s       else cut off
    idle keep-alive connection closed after       gateway.keep_alive_timeout_s (server)

`HeaderLimits` is ASGI middleware, so it refuses before routing and authentication with
OpenAI's error object naming the header. It works behind any server: Ray Serve starts its
own uvicorn (direct ingress: in the gateway replica; proxy: in the Serve proxy) without our
options, so these limits cannot be h11/httptools settings. The server's own limits come
first (httptools refuses a header block it cannot parse with 400). The body time is
enforced in `cluster.gateway.http.body.read_body`, the send stall in
`cluster.gateway.http.streaming.EventStreamResponse`; `keep_alive_timeout_s` is handed to
`serve.start` (`deployments.launcher`).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from cluster.config.settings import GatewaySettings
from cluster.errors import HeadersTooLarge
from cluster.gateway.http.errors import error_response


@dataclass(frozen=True, slots=True)
class ClientLimits:
    max_header_count: int = 100
    max_header_bytes: int = 32 * 1024
    body_timeout_s: float = 30.0
    send_timeout_s: float = 60.0

    @classmethod
    def of(cls, gateway: GatewaySettings) -> ClientLimits:
        return cls(
            gateway.max_header_count,
            gateway.max_header_bytes,
            gateway.body_timeout_s,
            gateway.send_timeout_s,
        )

    def check_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if len(headers) > self.max_header_count:
            raise HeadersTooLarge(
                f"The request has {len(headers)} header fields; at most "
                f"{self.max_header_count} are accepted.",
                param="headers",
            )
        total = 0
        for name, value in headers:
            total += len(name) + len(value)
            if total > self.max_header_bytes:
                raise HeadersTooLarge(
                    f"The request headers are larger than the limit of "
                    f"{self.max_header_bytes} bytes (exceeded at header "
                    f"'{name.decode('latin-1')}').",
                    param=name.decode("latin-1"),
                )


class HeaderLimits:
    """ASGI middleware: a request over `limits`' header bounds gets 431 and is not routed."""

    def __init__(self, app: ASGIApp, limits: ClientLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self.limits.check_headers(list(scope["headers"]))
            except HeadersTooLarge as err:
                response = error_response(err, {"connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
