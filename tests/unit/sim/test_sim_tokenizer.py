"""The simulated tokenizer and chat template: deterministic, lossless, prefix-stable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cluster.api.messages import (
    AssistantMessage,
    FunctionCall,
    FunctionDefinition,
    Message,
    SystemMessage,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from deployments.engines.sim.tokenizer import SimTokenizer, pieces, render_chat


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ("  x", ["  ", "x"]),
        ("a\n\nb", ["a", "\n\n", "b"]),
        ("<|user|>\nhi<|end|>", ["<|user|>", "\n", "hi", "<|end|>"]),
        ("x_1234", ["x", "_", "123", "4"]),
        ("internationalization", ["internatio", "nalization"]),
        ("naïve café", ["naïve", " café"]),
        ("<think>", ["<", "think", ">"]),
    ],
)
def test_pieces_table(text: str, expected: list[str]) -> None:
    assert pieces(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain words",
        " \t\n mixed  whitespace\r\n",
        "日本語のテキスト",
        "emoji 🙂!!",
        "a" * 1000,
    ],
)
def test_pieces_are_lossless(text: str) -> None:
    assert "".join(pieces(text)) == text


def test_cutting_at_a_piece_boundary_keeps_the_pieces_before_it() -> None:
    text = "One two, three.\n\nFour  five_6789 <|end|> six!"
    all_pieces = pieces(text)
    for k in range(len(all_pieces) + 1):
        assert pieces("".join(all_pieces[:k])) == all_pieces[:k]


def test_ids_are_deterministic_within_and_across_processes() -> None:
    text = "Hello, world!"
    a, b = SimTokenizer(), SimTokenizer()
    assert a.encode(text) == b.encode(text) == a.encode(text)
    assert all(0 <= i < a.vocab_size for i in a.encode(text))
    code = (
        "from deployments.engines.sim.tokenizer import SimTokenizer;"
        f"print(SimTokenizer().encode({text!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert out.stdout.strip() == str(a.encode(text))


def test_count_matches_encode() -> None:
    tok = SimTokenizer()
    text = ("The quick brown fox jumps over the lazy dog. " * 10).rstrip()
    assert tok.count(text) == len(tok.encode(text)) == 100


def _chat(n: int) -> list[Message]:
    turns: list[Message] = [
        SystemMessage(role="system", content="You are terse."),
        UserMessage(role="user", content="What is 2+2?"),
        AssistantMessage(
            role="assistant",
            content=None,
            tool_calls=[
                ToolCall(id="call_1", function=FunctionCall(name="calc", arguments='{"e":"2+2"}'))
            ],
        ),
        ToolMessage(role="tool", content="4", tool_call_id="call_1"),
        AssistantMessage(role="assistant", content="4."),
        UserMessage(role="user", content="And 3+3?"),
    ]
    return turns[:n]


TOOLS = [Tool(type="function", function=FunctionDefinition(name="calc", parameters={}))]


@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_conversations_sharing_messages_share_leading_tokens(k: int) -> None:
    tok = SimTokenizer()
    head = tok.encode(render_chat(_chat(k), TOOLS, add_generation_prompt=False))
    full = tok.encode(render_chat(_chat(6), TOOLS))
    assert full[: len(head)] == head and len(full) > len(head)


def test_a_turns_prompt_is_a_prefix_of_the_next_turns_prompt() -> None:
    tok = SimTokenizer()
    turn = tok.encode(render_chat(_chat(4), TOOLS))  # ends with the generation prompt
    nxt = tok.encode(render_chat(_chat(6), TOOLS))
    assert nxt[: len(turn)] == turn


def test_template_has_role_markers_and_tools_change_the_prompt() -> None:
    text = render_chat(_chat(2))
    assert text.startswith("<|system|>\nYou are terse.<|end|>\n<|user|>\n")
    assert text.endswith("<|assistant|>\n")
    assert render_chat(_chat(2), TOOLS) != text


def test_assistant_prefix_is_continued_without_a_generation_prompt() -> None:
    messages: list[Message] = [
        UserMessage(role="user", content="Hi"),
        AssistantMessage(role="assistant", content="Sure, ", prefix=True),
    ]
    assert render_chat(messages).endswith("<|assistant|>\nSure, ")
