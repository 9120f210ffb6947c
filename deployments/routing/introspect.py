"""Reach the request router behind a `DeploymentHandle`, from the same process.

Serve constructs the router itself and offers no public way to get at it, so this is the
one place that reads Ray Serve 2.60 internals (pinned in pyproject):

    handle._router                      the handle's Router (SingletonThreadRouter / ...)
          ._asyncio_router              its AsyncioRouter
          ._request_router              the RequestRouter instance, once built

The router runs on its own event loop (by default a dedicated thread), so its state is
read on that loop: `snapshot_of` schedules `router.snapshot()` there and waits for it.
Anything unexpected (another Ray version, a router that is not ours, not built yet) gives
None rather than an error: this serves the debug endpoint and tests only.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, cast

SNAPSHOT_TIMEOUT_S = 5.0


class Introspectable(Protocol):
    loop: asyncio.AbstractEventLoop | None

    def snapshot(self, *, include_index: bool = False) -> dict[str, Any]: ...


def request_router_of(handle: Any) -> Introspectable | None:
    """The handle's `RoutingRequestRouter`, or None (not built yet, or not ours)."""
    outer = getattr(handle, "_router", None)
    inner = getattr(outer, "_asyncio_router", None)
    router = getattr(inner, "_request_router", None)
    if router is None or not callable(getattr(router, "snapshot", None)):
        return None
    if not hasattr(router, "loop"):
        return None
    return cast(Introspectable, router)


async def snapshot_of(handle: Any, *, include_index: bool = False) -> dict[str, Any] | None:
    """`router.snapshot()` taken on the router's own loop; None when there is no router."""
    router = request_router_of(handle)
    if router is None:
        return None
    loop = router.loop
    if loop is None or loop is asyncio.get_running_loop():
        return router.snapshot(include_index=include_index)

    async def take() -> dict[str, Any]:
        return router.snapshot(include_index=include_index)

    future = asyncio.run_coroutine_threadsafe(take(), loop)
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout=SNAPSHOT_TIMEOUT_S)


def snapshot_blocking(handle: Any, *, include_index: bool = False) -> dict[str, Any] | None:
    """The same from synchronous code outside the router's loop (a test driver)."""
    router = request_router_of(handle)
    if router is None:
        return None
    loop = router.loop
    if loop is None:
        return router.snapshot(include_index=include_index)

    async def take() -> dict[str, Any]:
        return router.snapshot(include_index=include_index)

    return asyncio.run_coroutine_threadsafe(take(), loop).result(timeout=SNAPSHOT_TIMEOUT_S)
