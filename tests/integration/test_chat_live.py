"""Chat completions over the live cluster: OpenAI SDK, requests and curl, every model."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import openai
import pytest
import requests

from cluster.config.catalog import load_builtin_catalog
from tests.integration.live import ALL_NAMES, HTTP_TIMEOUT_S, MINIMAX, MISTRAL

pytestmark = pytest.mark.integration

CATALOG = load_builtin_catalog()
HELLO = [{"role": "user", "content": "Say hello to the integration tests."}]


def canonical(name: str) -> str:
    spec = CATALOG.find(name)
    assert spec is not None
    return spec.id


def assert_chat_completion(body: dict[str, Any], name: str, max_tokens: int) -> None:
    """The OpenAI chat.completion shape, with usage and a simulated fingerprint."""
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int)
    assert body["model"] in (name, canonical(name))
    assert "sim" in body["system_fingerprint"].lower()
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= max_tokens
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] >= 0


@pytest.mark.parametrize("name", ALL_NAMES)
def test_sdk_chat(sdk: openai.OpenAI, name: str) -> None:
    completion = sdk.chat.completions.create(model=name, messages=HELLO, max_tokens=12)  # type: ignore[arg-type]
    assert_chat_completion(completion.model_dump(), name, 12)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_requests_chat(api: str, name: str) -> None:
    reply = requests.post(
        f"{api}/chat/completions",
        json={"model": name, "messages": HELLO, "max_tokens": 10},
        headers={"Authorization": "Bearer whatever"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-modelyard-engine"] == "sim (simulated)"
    assert_chat_completion(reply.json(), name, 10)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_curl_chat(api: str, name: str) -> None:
    body = json.dumps({"model": name, "messages": HELLO, "max_tokens": 8})
    done = subprocess.run(
        [
            "curl", "-sS", "--max-time", str(int(HTTP_TIMEOUT_S)),
            "-H", "Content-Type: application/json",
            "-w", "\n%{http_code}",
            "-d", body, f"{api}/chat/completions",
        ],
        capture_output=True, text=True, timeout=HTTP_TIMEOUT_S + 5, check=True,
    )  # fmt: skip
    text, status = done.stdout.rsplit("\n", 1)
    assert status == "200", text
    assert_chat_completion(json.loads(text), name, 8)


def test_minimax_returns_reasoning_content(api: str) -> None:
    reply = requests.post(
        f"{api}/chat/completions",
        json={"model": MINIMAX, "messages": HELLO, "max_tokens": 64},
        timeout=HTTP_TIMEOUT_S,
    )
    assert reply.status_code == 200, reply.text
    message = reply.json()["choices"][0]["message"]
    assert isinstance(message.get("reasoning_content"), str)
    assert message["reasoning_content"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("name", [MISTRAL, "casperhansen-mistral-small-24b-instruct-2501-awq"])
def test_mistral_small_named_tool_call(sdk: openai.OpenAI, name: str) -> None:
    completion = sdk.chat.completions.create(
        model=name,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(arguments, dict)
    assert isinstance(arguments["city"], str)
    if "unit" in arguments:
        assert arguments["unit"] in ("celsius", "fahrenheit")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_sdk_stream_with_usage(sdk: openai.OpenAI, name: str) -> None:
    stream = sdk.chat.completions.create(
        model=name,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 3
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length")
    assert all(f is None for f in finishes[:-1])
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert 0 < final.usage.completion_tokens <= 16
    assert all(c.usage is None for c in chunks[:-1])
