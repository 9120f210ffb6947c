"""GET /debug/routing: loopback clients only; `?index=1` asks for the exact index."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from deployments.routing.debug import ROUTE, add_routing_debug_route
from deployments.routing.introspect import request_router_of


class Source:
    def __init__(self) -> None:
        self.asked: list[bool] = []

    async def routing(self, *, include_index: bool = False) -> dict[str, Any]:
        self.asked.append(include_index)
        return {"m": {"index_blocks": 3}}


@pytest.mark.parametrize(
    ("client", "query", "status", "asked"),
    [
        (("127.0.0.1", 5000), "", 200, [False]),
        (("::1", 5000), "?index=1", 200, [True]),
        (("10.0.0.7", 5000), "", 403, []),
        (("testclient", 5000), "?index=1", 403, []),
    ],
)
def test_debug_route_answers_loopback_only(
    client: tuple[str, int], query: str, status: int, asked: list[bool]
) -> None:
    app = FastAPI()
    source = Source()
    add_routing_debug_route(app, source)
    with TestClient(app, client=client) as http:
        reply = http.get(ROUTE + query)
    assert reply.status_code == status
    assert source.asked == asked
    if status == 200:
        assert reply.json() == {"m": {"index_blocks": 3}}


@pytest.mark.parametrize("handle", [object(), None, "handle"])
def test_no_router_behind_an_object_that_is_not_a_built_handle(handle: object) -> None:
    assert request_router_of(handle) is None
