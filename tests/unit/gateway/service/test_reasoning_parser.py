"""The `<think>` parser: every chunking of the same text gives the same split."""

from __future__ import annotations

import itertools
import random

import pytest

from cluster.parsing.reasoning import ReasoningSplit, ThinkTagParser

# (case id, raw text, expected reasoning, expected content)
CASES = [
    ("plain", "no tags at all", "", "no tags at all"),
    ("block-then-answer", "<think>abc</think>answer", "abc", "answer"),
    (
        "line-breaks",
        "<think>\nstep 1\nstep 2\n</think>\n\nThe answer.",
        "step 1\nstep 2\n",
        "The answer.",
    ),
    ("unterminated", "<think>still thinking", "still thinking", ""),
    ("partial-close-at-end", "<think>abc</thi", "abc</thi", ""),
    ("partial-open-at-end", "x <thin", "", "x <thin"),
    ("less-than-in-content", "a < b and c<d", "", "a < b and c<d"),
    ("less-than-in-reasoning", "<think>a<b</think>c", "a<b", "c"),
    ("empty-block", "<think></think>x", "", "x"),
    ("two-blocks", "<think>a</think>b<think>c</think>d", "ac", "bd"),
    ("text-before-block", "pre <think>r</think> post", "r", "pre post"),
    ("stray-close", "answer</think>more", "", "answermore"),
    ("double-close", "<think>a</think></think>b", "a", "b"),
    ("lt-before-open", "<<think>x</think>", "x", "<"),
    ("open-inside-block-is-text", "<think>a<think>b</think>c", "a<think>b", "c"),
    ("unicode", "<think>думаю 🤔</think>ответ", "думаю 🤔", "ответ"),
    ("only-whitespace-after", "<think>r</think>\n\n", "r", ""),
    ("empty", "", "", ""),
]


def run(pieces: list[str]) -> ReasoningSplit:
    parser = ThinkTagParser()
    reasoning, content = [], []
    for piece in pieces:
        split = parser.feed(piece)
        reasoning.append(split.reasoning)
        content.append(split.content)
    tail = parser.finish()
    return ReasoningSplit("".join([*reasoning, tail.reasoning]), "".join([*content, tail.content]))


def chunkings(text: str) -> list[list[str]]:
    """Whole, every two-way split, one character at a time, and seeded random cuts."""
    out = [[text], list(text)]
    out += [[text[:i], text[i:]] for i in range(1, len(text))]
    rng = random.Random(0)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(3, max(len(text) - 1, 0))))
        bounds = [0, *cuts, len(text)]
        out.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return out


@pytest.mark.parametrize(
    ("text", "reasoning", "content"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_every_chunking_gives_the_same_split(text: str, reasoning: str, content: str) -> None:
    for pieces in chunkings(text):
        assert run(pieces) == ReasoningSplit(reasoning, content), pieces


def test_partial_tag_is_held_until_decided() -> None:
    parser = ThinkTagParser()
    assert parser.feed("<thi") == ReasoningSplit()
    assert parser.feed("nk>why") == ReasoningSplit(reasoning="why")
    assert parser.feed("</") == ReasoningSplit()
    assert parser.feed("think>so") == ReasoningSplit(content="so")
    assert parser.finish() == ReasoningSplit()


def test_deltas_stream_without_waiting_for_the_close_tag() -> None:
    parser = ThinkTagParser()
    assert parser.feed("<think>a") == ReasoningSplit(reasoning="a")
    assert parser.feed("b") == ReasoningSplit(reasoning="b")
