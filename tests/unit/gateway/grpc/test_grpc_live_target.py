"""The live replay's gRPC target (`bench.live_targets.GrpcTarget`) over the real
gRPC front door: first token and usage (with cached tokens) of chat and completions."""

from __future__ import annotations

import uuid

import pytest

from bench.live_targets import Api, GrpcTarget
from tests.unit.gateway.grpc.harness import API_KEY, QWEN, Harness


@pytest.mark.parametrize("api", ["chat", "completions"])
async def test_grpc_target_reads_first_token_and_usage(harness: Harness, api: Api) -> None:
    target = GrpcTarget(harness.server.target, model=QWEN, api=api, api_key=API_KEY)
    prompt = uuid.uuid4().hex + " " + " ".join(f"word{i}" for i in range(200))
    try:
        first = await target.send(prompt, max_tokens=4)
        again = await target.send(prompt, max_tokens=4)
    finally:
        await target.aclose()
    for out in (first, again):
        assert out.error is None
        assert out.first_token is not None and out.end >= out.first_token
        assert out.usage is not None and out.usage.completion_tokens == 4
    assert first.usage is not None and again.usage is not None
    assert first.usage.prompt_tokens == again.usage.prompt_tokens > 200
    assert first.usage.cached_tokens == 0 < again.usage.cached_tokens  # the shared prefix
