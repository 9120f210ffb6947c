"""The helpers the streaming tag parsers share (`cluster.parsing.tags`)."""

from __future__ import annotations

import pytest

from cluster.parsing.tags import held_tail, strip_leading


@pytest.mark.parametrize(
    ("text", "tags", "held"),
    [
        ("answer <thi", ("<think>",), 4),
        ("answer <", ("<think>", "</think>"), 1),
        ("answer </", ("<think>", "</think>"), 2),
        ("answer </thi", ("<think>", "</think>"), 5),
        ("answer <think>", ("<think>",), 0),  # a whole tag is the parser's to find, not held
        ("answer", ("<think>",), 0),
        ("", ("<think>",), 0),
        ("<tool_call", ("<tool_calls>",), 10),
    ],
)
def test_held_tail(text: str, tags: tuple[str, ...], held: int) -> None:
    assert held_tail(text, tags) == held


@pytest.mark.parametrize(
    ("text", "stripping", "out"),
    [
        ("\n\n  Hi ", True, ("Hi ", False)),
        (" \n", True, ("", True)),  # only white space so far: keep stripping
        ("", True, ("", True)),
        ("  Hi", False, ("  Hi", False)),
    ],
)
def test_strip_leading(text: str, stripping: bool, out: tuple[str, bool]) -> None:
    assert strip_leading(text, stripping) == out
