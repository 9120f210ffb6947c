"""Let a restarted gateway replica bind its direct-ingress port again at once.

Ray Serve 2.60 creates a direct-ingress replica's listening socket without SO_REUSEADDR
(`ray/serve/_private/replica.py` calls `start_asgi_http_server(..., enable_so_reuseport=
False)`). When a gateway replica dies with connections open (SIGKILL under load), those
connections sit in TIME_WAIT on its port for a minute, the restarted replica's `bind` fails
with "address in use", and Serve's controller blocks that port and hands out the next one:
the gateway comes back on `port + 1`, where no client, Kubernetes Service or test looks.
uvicorn's own listeners set SO_REUSEADDR for exactly this reason.

`reuse_address_on_direct_ingress()`, called in the gateway replica's process before Serve
starts its server there (the `Gateway` constructor), makes that bind set SO_REUSEADDR —
only SO_REUSEADDR: SO_REUSEPORT, which Serve's flag would also set, would let a second live
process share the port. It touches two private names of Ray Serve (checked by
tests/unit/launcher/test_ingress_bind.py) and does nothing when they are missing.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

log = logging.getLogger(__name__)


def _reuse_address(sock: socket.socket) -> bool:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return True


def reuse_address_on_direct_ingress() -> bool:
    """Patch this process's Serve replica module (module docstring); True when applied."""
    try:
        from ray.serve._private import http_util, replica
    except ImportError:  # pragma: no cover - Ray's layout changed
        return False
    start = getattr(replica, "start_asgi_http_server", None)
    if start is None or not hasattr(http_util, "set_socket_reuse_port"):
        log.warning("Ray Serve's direct-ingress bind is not where expected; not patched")
        return False
    if getattr(start, "_modelyard_reuse_address", False):
        return True

    async def start_with_reuse_address(*args: Any, **kwargs: Any) -> Any:
        kwargs["enable_so_reuseport"] = True  # routed to `_reuse_address` below
        return await start(*args, **kwargs)

    start_with_reuse_address._modelyard_reuse_address = True  # type: ignore[attr-defined]
    http_util.set_socket_reuse_port = _reuse_address
    replica.start_asgi_http_server = start_with_reuse_address  # type: ignore[attr-defined]
    return True
