"""PromptBlocks: the prefix-cached tokenisation gives exactly the uncached result."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.engine import EngineRequest
from cluster.routing import block_hashes
from deployments.engines.sim.engine import prompt_text
from deployments.engines.sim.tokenizer import SimTokenizer
from deployments.routing.prompts import extra_keys
from deployments.routing.tokens import PromptBlocks, segments

SYSTEM = {"role": "system", "content": "You are terse. " * 40}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}


def request(**fields: Any) -> EngineRequest:
    return EngineRequest.model_validate({"request_id": "q", "model": "m", **fields})


CASES: dict[str, dict[str, Any]] = {
    "one-user": {"messages": [{"role": "user", "content": "Hello there, how are you?"}]},
    "system-user": {"messages": [SYSTEM, {"role": "user", "content": "Hi"}]},
    "multi-turn": {
        "messages": [
            SYSTEM,
            {"role": "user", "content": "First question?"},
            {"role": "assistant", "content": "First answer."},
            {"role": "user", "content": "Second question, longer " * 9},
        ]
    },
    "tools": {
        "tools": TOOLS,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "rain", "name": "w"},
        ],
    },
    "prefix-continuation": {
        "messages": [
            {"role": "user", "content": "Write a haiku " * 5},
            {"role": "assistant", "content": "Autumn moon", "prefix": True},
        ]
    },
    "whitespace-and-unicode": {
        "messages": [
            {"role": "user", "content": "  Grüße, 東京!\n\n\t"},
            {"role": "user", "content": "\nnext  ", "name": "bob"},
        ]
    },
    "parts": {"messages": [{"role": "user", "content": [{"type": "text", "text": "a b c " * 30}]}]},
    "completion": {"prompt": "def fib(n):\n    return n if n < 2 else " * 6},
    "adapter-and-salt": {
        "messages": [SYSTEM, {"role": "user", "content": "x"}],
        "adapter": "legal",
        "cache_salt": "t1",
    },
}


def reference(req: EngineRequest, block: int) -> tuple[int, list[int]]:
    ids = SimTokenizer().encode(prompt_text(req))
    return len(ids), block_hashes(ids, block, extra_keys(req))


@pytest.mark.parametrize("block", [1, 16, 64])
@pytest.mark.parametrize("case", list(CASES))
def test_cached_blocks_equal_uncached(case: str, block: int) -> None:
    req = request(**CASES[case])
    blocks = PromptBlocks(block)
    first = blocks.blocks(req, extra_keys(req))
    again = blocks.blocks(req, extra_keys(req))  # now from the cache
    assert first == again == reference(req, block)
    parts = segments(req)
    assert "".join(parts) == prompt_text(req)
    # one segment per message (+ tools block, + generation prompt unless continuing)
    expected = 1 if req.messages is None else len(req.messages) + bool(req.tools)
    expected += case not in ("completion", "prefix-continuation")
    assert len(parts) == expected


def test_a_conversation_resumes_from_its_previous_turn() -> None:
    blocks = PromptBlocks(16)
    turn = [SYSTEM, {"role": "user", "content": "One?"}]
    for i in range(4):
        req = request(messages=turn)
        assert blocks.blocks(req, []) == reference(req, 16)
        turn = [*turn, {"role": "assistant", "content": f"Answer {i}."}]
        turn = [*turn, {"role": "user", "content": f"Question {i}?"}]
    assert blocks.hits >= 3


def test_extra_keys_separate_the_cache() -> None:
    blocks = PromptBlocks(16)
    req = request(messages=[SYSTEM, {"role": "user", "content": "Hi"}])
    plain = blocks.blocks(req, [])
    salted = blocks.blocks(req, ["salt:x"])
    assert plain[0] == salted[0]
    assert not set(plain[1]) & set(salted[1])


@pytest.mark.parametrize(("entries", "hashes"), [(2, 1_000_000), (4096, 20)])
def test_the_cache_is_bounded(entries: int, hashes: int) -> None:
    blocks = PromptBlocks(16, max_entries=entries, max_hashes=hashes)
    for i in range(10):
        req = request(messages=[{"role": "system", "content": f"S{i} " * 60}, SYSTEM])
        assert blocks.blocks(req, []) == reference(req, 16)
    assert len(blocks) <= entries
    assert blocks._stored_hashes <= hashes
