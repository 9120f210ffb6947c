"""The OpenAI request surface over the live cluster (`make up`'s app, real Ray Serve), on
simulated models: n > 1 and prompt lists used to hang here (Ray Serve matched the
concurrent calls of one request by its shared id; `deployments.call_ids`). Log-probabilities
are refused by the simulator with a 400 naming the field (the real model serves them:
tests/vllm/openai_surface_real.py)."""

from __future__ import annotations

import openai
import pytest
import requests

from tests.integration.live import HTTP_TIMEOUT_S, MINIMAX, QWEN
from tests.openai_surface import (
    check_chat_n,
    check_chat_n_streamed,
    check_completion_n,
    check_three_prompts,
    check_token_id_prompt,
)

pytestmark = pytest.mark.integration
MODELS = [QWEN, MINIMAX]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "check",
    [
        check_chat_n,
        check_chat_n_streamed,
        check_completion_n,
        check_three_prompts,
        check_token_id_prompt,
    ],
)
def test_openai_surface(sdk: openai.OpenAI, model: str, check: object) -> None:
    check(sdk, model)  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_logprobs_are_refused_by_the_simulator_naming_the_field(
    sdk: openai.OpenAI, kind: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        if kind == "chat":
            sdk.chat.completions.create(
                model=QWEN,
                messages=[{"role": "user", "content": "hi"}],
                logprobs=True,
                top_logprobs=2,
            )
        else:
            sdk.completions.create(model=QWEN, prompt="hi", logprobs=2)
    assert info.value.body["param"] == "logprobs"  # type: ignore[index]


def test_the_gateway_serves_its_openapi_document(base_url: str) -> None:
    reply = requests.get(f"{base_url}/openapi.json", timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["openapi"].startswith("3.1")
    assert {"/v1/chat/completions", "/api/v1/completions"} <= set(document["paths"])
    model = document["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"]
    assert QWEN in model["anyOf"][0]["enum"]
