"""Managed keys over gRPC: the same authenticator and meter as HTTP, gRPC's status codes,
and the cost in a stream's last chunk matches the ledger's record."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import grpc
import pytest

from cluster.errors import ModelyardError
from cluster.gateway.grpc.client import ChatRequest, ModelyardClient, grpc_code, user
from cluster.gateway.grpc.server import build_grpc_server
from tests.unit.ledger.app_rig import QWEN, billing_app

NOW = datetime.now(UTC)


async def test_managed_keys_over_grpc(ledger_url: str) -> None:
    async with billing_app(ledger_url) as rig:
        state = rig.app_state
        server = build_grpc_server(state.service, state.authenticator)
        await server.start()
        try:
            key, info = rig.keys.create("grpc", now=NOW)
            request = ChatRequest(model=QWEN, messages=[user("hello")], max_tokens=5)
            async with ModelyardClient(server.target, api_key=key) as client:
                chunks = [c async for c in client.chat(request, deadline_s=10)]
            last = chunks[-1]
            assert last.cost.priced
            record = rig.ledger.queries.generation(last.id)
            assert record is not None and record.cost == Decimal(last.cost.total)
            assert record.key_id == info.id

            poor, _ = rig.keys.create("poor", now=NOW, budget=Decimal("0.000001"))
            other, _ = rig.keys.create("other", now=NOW, models=["minimax/minimax-m1"])
            cases = [
                ("myd-000000000000-" + "A" * 43, grpc.StatusCode.UNAUTHENTICATED),
                (poor, grpc.StatusCode.FAILED_PRECONDITION),
                (other, grpc.StatusCode.PERMISSION_DENIED),
            ]
            for presented, code in cases:
                async with ModelyardClient(server.target, api_key=presented) as client:
                    with pytest.raises(ModelyardError) as caught:
                        await client.chat_unary(request, deadline_s=10)
                assert grpc_code(caught.value) == code
        finally:
            await server.stop(1.0)


def test_rate_limits_carry_retry_after_in_the_trailers() -> None:
    from cluster.errors import RateLimited
    from cluster.gateway.grpc.status import RETRY_AFTER_KEY, trailers_of

    assert (RETRY_AFTER_KEY, "17") in trailers_of(RateLimited("slow down", retry_after_s=17))
    assert all(key != RETRY_AFTER_KEY for key, _ in trailers_of(RateLimited("slow down")))
