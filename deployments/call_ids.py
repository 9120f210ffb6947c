"""One Serve request id per handle call, so concurrent calls of one request do not collide.

Ray Serve 2.60 stamps every handle call made while serving a request with that request's
`internal_request_id` (`ray.serve._private.default_impl.get_request_metadata` reads it from
the request context), and its request router indexes pending calls by that id
(`RequestRouter._pending_requests_by_id`, "an internal request ID can be shared by
dependent handle calls"): of two calls pending at once under one id, only the first is
indexed, so only it can be matched to a replica. The second call's routing task then
chooses replicas forever without ever fulfilling it — which is how `n: 2` and a list of
prompts (several concurrent calls of one HTTP request) hung until the client gave up. Our
own router (`deployments.request_router`) keys its in-flight bookkeeping by the same id.

`own_call_id(call_id)` makes the handle calls issued inside it carry `call_id` instead
(the request context is a context variable; it is restored on exit). Serve reads the
context synchronously in `handle.method.remote()`, so wrapping that one call is enough.
Cancellation does not rely on Serve's parent-to-child propagation: `HandleBackend`
cancels each response it abandons itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def own_call_id(call_id: str) -> Iterator[None]:
    """Handle calls made inside carry `call_id` as their Serve internal request id."""
    from ray.serve import context

    current = context._get_serve_request_context()
    own = dataclasses.replace(current, _internal_request_id=call_id)
    token = context._serve_request_context.set(own)  # type: ignore[arg-type]
    try:
        yield
    finally:
        context._serve_request_context.reset(token)
