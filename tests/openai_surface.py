"""Checks of the OpenAI request surface a client may use, with the official `openai` SDK:
n > 1 (chat and completions, streamed and not), a list of three prompts, a prompt of token
ids, and log-probabilities. Shared by the live suites of a simulated model
(tests/integration) and of the real model on vLLM (tests/vllm), which run them against the
app `make up` serves. Assertions are on structure and counts, never on generated text.
The SDK clients carry a timeout, so a hang fails the test instead of waiting forever.
"""

from __future__ import annotations

import uuid

from openai import OpenAI

MAX_TOKENS = 6
#: Small ids exist in every vocabulary here (SmolLM2: 49,152; the simulator counts any).
TOKEN_IDS = [28, 29, 30, 31, 32, 33, 34, 35]


def fresh(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def check_chat_n(client: OpenAI, model: str) -> None:
    messages = [{"role": "user", "content": fresh("Name a colour.")}]
    single = client.chat.completions.create(model=model, messages=messages, max_tokens=MAX_TOKENS)  # type: ignore[arg-type]
    reply = client.chat.completions.create(
        model=model, messages=messages, max_tokens=MAX_TOKENS, n=2
    )  # type: ignore[arg-type]
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in reply.choices)
    assert reply.usage is not None and single.usage is not None
    assert reply.usage.prompt_tokens == single.usage.prompt_tokens  # one prompt, counted once
    assert 2 <= reply.usage.completion_tokens <= 2 * MAX_TOKENS


def check_chat_n_streamed(client: OpenAI, model: str) -> None:
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": fresh("Name a city.")}],  # type: ignore[list-item]
        max_tokens=MAX_TOKENS,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    finished = sorted(c.index for chunk in chunks for c in chunk.choices if c.finish_reason)
    assert finished == [0, 1]
    roles = sorted(c.index for chunk in chunks for c in chunk.choices if c.delta.role)
    assert roles == [0, 1]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert 2 <= usage.completion_tokens <= 2 * MAX_TOKENS


def check_completion_n(client: OpenAI, model: str) -> None:
    prompt = fresh("Once upon a time")
    reply = client.completions.create(model=model, prompt=prompt, max_tokens=MAX_TOKENS, n=2)
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in reply.choices)
    stream = client.completions.create(
        model=model,
        prompt=prompt,
        max_tokens=MAX_TOKENS,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert sorted(c.index for chunk in chunks for c in chunk.choices if c.finish_reason) == [0, 1]
    assert (
        chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == reply.usage.prompt_tokens
    )  # type: ignore[union-attr]


def check_three_prompts(client: OpenAI, model: str) -> None:
    prompts = [fresh("The sea is"), fresh("A fast horse and a very slow"), fresh("One")]
    singles = [
        client.completions.create(model=model, prompt=p, max_tokens=MAX_TOKENS) for p in prompts
    ]
    reply = client.completions.create(model=model, prompt=prompts, max_tokens=MAX_TOKENS, n=2)
    assert [c.index for c in reply.choices] == list(range(6))  # prompt-major, then n
    assert all(c.finish_reason in ("stop", "length") for c in reply.choices)
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == sum(s.usage.prompt_tokens for s in singles)  # type: ignore[union-attr]
    assert 6 <= reply.usage.completion_tokens <= 6 * MAX_TOKENS


def check_token_id_prompt(client: OpenAI, model: str) -> None:
    reply = client.completions.create(model=model, prompt=TOKEN_IDS, max_tokens=MAX_TOKENS)
    assert reply.usage is not None and reply.usage.prompt_tokens == len(TOKEN_IDS)
    assert reply.choices[0].finish_reason in ("stop", "length")
    batch = client.completions.create(
        model=model, prompt=[TOKEN_IDS, TOKEN_IDS[:3]], max_tokens=MAX_TOKENS
    )
    assert [c.index for c in batch.choices] == [0, 1]
    assert batch.usage is not None and batch.usage.prompt_tokens == len(TOKEN_IDS) + 3
