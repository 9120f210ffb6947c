"""`own_call_id`: handle calls made inside carry their own Serve internal request id (the
fix for n > 1 hanging behind Ray Serve's per-id matching), and the request's own context
comes back afterwards. The live proof is tests/integration/test_openai_surface_live.py."""

from __future__ import annotations

import asyncio

from ray.serve import context
from ray.serve._private.default_impl import create_init_handle_options, get_request_metadata
from ray.serve._private.handle_options import DynamicHandleOptions

from deployments.call_ids import own_call_id


def _internal_id() -> str:
    init = create_init_handle_options()
    return get_request_metadata(init, DynamicHandleOptions()).internal_request_id


async def test_concurrent_calls_of_one_request_get_distinct_ids() -> None:
    context._set_request_context(request_id="req-1", _internal_request_id="parent")
    assert _internal_id() == "parent"  # what every child call used to carry

    async def child(i: int) -> str:
        await asyncio.sleep(0)
        with own_call_id(f"resp-{i}/1"):
            return _internal_id()

    ids = await asyncio.gather(*(child(i) for i in range(3)))
    assert ids == ["resp-0/1", "resp-1/1", "resp-2/1"]
    assert _internal_id() == "parent"
    assert context._get_serve_request_context().request_id == "req-1"
