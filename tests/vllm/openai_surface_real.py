"""The OpenAI request surface on the real model (smollm2-135m-instruct on vLLM CPU) through
`make up`'s app. These tests are collected in tests/vllm/test_up_real_model.py, which
imports them, so they run on that module's one `modelyard up` (no second cluster) before
its final Ctrl-C test."""

from __future__ import annotations

import pytest
from openai import BadRequestError, OpenAI

from tests.openai_surface import (
    MAX_TOKENS,
    check_chat_n,
    check_chat_n_streamed,
    check_completion_n,
    check_three_prompts,
    check_token_id_prompt,
    fresh,
)

REAL_MODEL = "smollm2-135m-instruct"


def test_real_model_n_choices(client: OpenAI) -> None:
    check_chat_n(client, REAL_MODEL)
    check_chat_n_streamed(client, REAL_MODEL)
    check_completion_n(client, REAL_MODEL)


def test_real_model_prompt_batches_and_token_ids(client: OpenAI) -> None:
    check_three_prompts(client, REAL_MODEL)
    check_token_id_prompt(client, REAL_MODEL)
    with pytest.raises(BadRequestError):  # past SmolLM2's 49,152-token vocabulary: vLLM's 400
        client.completions.create(model=REAL_MODEL, prompt=[1_000_000], max_tokens=2)


def test_real_model_chat_logprobs(client: OpenAI) -> None:
    messages = [{"role": "user", "content": fresh("Count to three.")}]
    reply = client.chat.completions.create(
        model=REAL_MODEL,
        messages=messages,
        max_tokens=MAX_TOKENS,
        logprobs=True,
        top_logprobs=2,  # type: ignore[arg-type]
    )
    [choice] = reply.choices
    assert reply.usage is not None and choice.logprobs is not None
    content = choice.logprobs.content or []
    assert len(content) == reply.usage.completion_tokens
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in content)
    stream = client.chat.completions.create(
        model=REAL_MODEL,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=MAX_TOKENS,
        logprobs=True,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = [
        t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs.content or []
    ]
    assert chunks[-1].usage is not None
    assert len(streamed) == chunks[-1].usage.completion_tokens


def test_real_model_completion_logprobs_and_logit_bias(client: OpenAI) -> None:
    reply = client.completions.create(
        model=REAL_MODEL, prompt=fresh("The alphabet:"), max_tokens=MAX_TOKENS, logprobs=2, n=2
    )
    assert reply.usage is not None and len(reply.choices) == 2
    for choice in reply.choices:
        lp = choice.logprobs
        assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
        count = len(lp.tokens)
        assert count == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset or [])
        assert lp.text_offset == sorted(lp.text_offset or [])
        assert all(len(top) >= 1 for top in lp.top_logprobs)
    assert sum(len(c.logprobs.tokens or []) for c in reply.choices) == reply.usage.completion_tokens  # type: ignore[union-attr]
    biased = client.completions.create(
        model=REAL_MODEL, prompt=fresh("x"), max_tokens=MAX_TOKENS, logit_bias={"28": 5}
    )
    assert biased.choices[0].finish_reason in ("stop", "length")
