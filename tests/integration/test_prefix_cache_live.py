"""Prefix caching through the cluster: a repeated long prefix is served from the KV cache.

Each model has one replica here, so the second request meets the blocks the first one left.
MiniMax-M1 has prefix caching disabled (hybrid linear attention): always 0 cached tokens.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.integration.live import HTTP_TIMEOUT_S, MINIMAX, MISTRAL_ALIAS, MODEL_IDS

pytestmark = pytest.mark.integration


def cached_tokens(api: str, model: str, prompt: str) -> tuple[int, int]:
    reply = requests.post(
        f"{api}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 4},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    return usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"]


@pytest.mark.parametrize("model", [*MODEL_IDS, MISTRAL_ALIAS])
def test_repeated_prefix_is_cached_except_minimax(api: str, model: str) -> None:
    # A prefix no other test sends (so the first request starts cold), ~hundreds of tokens.
    prefix = f"Session {uuid.uuid4().hex}. " + " ".join(
        f"Clause {i}: the gateway routes requests by prefix." for i in range(60)
    )
    prompt_1, cached_1 = cached_tokens(api, model, prefix + " First question?")
    prompt_2, cached_2 = cached_tokens(api, model, prefix + " Second, different question?")
    assert cached_1 == 0
    if model == MINIMAX:
        assert cached_2 == 0
    else:
        assert 0 < cached_2 < prompt_2
        assert cached_2 % 16 == 0  # whole 16-token blocks only
    assert prompt_1 > 200
